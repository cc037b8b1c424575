#include "agent/transport/omadm_headers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

namespace dm::transport {
namespace {

TEST(CorrelationVectorTest, SuffixIncrementsPerMessage) {
  CorrelationVector cv("AbCdEfGhIjKlMnOp");
  EXPECT_EQ(cv.Next(), "AbCdEfGhIjKlMnOp.0.0.0");
  EXPECT_EQ(cv.Next(), "AbCdEfGhIjKlMnOp.0.0.1");
  EXPECT_EQ(cv.Next(), "AbCdEfGhIjKlMnOp.0.0.2");
}

TEST(CorrelationVectorTest, NewBasesAreRandomBase64) {
  CorrelationVector a = CorrelationVector::New();
  CorrelationVector b = CorrelationVector::New();
  EXPECT_EQ(a.base().size(), 16u);
  EXPECT_NE(a.base(), b.base());
  EXPECT_TRUE(std::all_of(a.base().begin(), a.base().end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  })) << a.base();
}

TEST(OmaDmHeadersTest, EachMessageCarriesTheWindowsHeaderSet) {
  OmaDmHeaders headers("0", CorrelationVector("base"));
  HttpHeaders first = headers.NextMessage();
  EXPECT_EQ(FindHeader(first, "Accept"),
            "application/vnd.syncml.dm+xml, application/vnd.syncml.dm+wbxml, "
            "application/octet-stream");
  EXPECT_EQ(FindHeader(first, "Accept-Charset"), "UTF-8");
  EXPECT_EQ(FindHeader(first, "Client-Request-Id"), "0");
  EXPECT_EQ(FindHeader(first, "MS-CV"), "base.0.0.0");
  EXPECT_EQ(FindHeader(first, "Accept-Encoding"), std::nullopt);  // we do not decode gzip
  HttpHeaders second = headers.NextMessage();
  EXPECT_EQ(FindHeader(second, "MS-CV"), "base.0.0.1");
}

}  // namespace
}  // namespace dm::transport
