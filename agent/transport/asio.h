// The only way the project includes Boost.Asio / Boost.Beast.
//
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>; GCC 12's
// headers no longer pull it in transitively, so in C++20 mode any Asio include fails to compile
// (chriskohlhoff/asio#944). Including <utility> first, in one place, fixes it for every file.
// Only .cpp files include this; the public transport headers stay free of Boost.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace dm::transport {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
}  // namespace dm::transport
