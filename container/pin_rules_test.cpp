#include <gtest/gtest.h>

#include "container/container.h"

namespace dm::container {
namespace {

Status Check(std::string_view pin, const PinComplexity& c) {
  auto rules = ResolvePinRules(c);
  EXPECT_TRUE(rules.ok()) << rules.status().ToString();
  if (!rules.ok()) return rules.status();
  return CheckPin(SecretBytes(pin), *rules);
}

std::string Message(std::string_view pin, const PinComplexity& c) {
  Status s = Check(pin, c);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << pin;
  return s.message();
}

TEST(PinRulesTest, NotConfiguredMeansDigitsRequiredAndOthersDisallowed) {
  auto r = ResolvePinRules({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->minimum_length, 4);
  EXPECT_EQ(r->maximum_length, 127);
  EXPECT_EQ(r->digits, CharRule::kRequire);
  EXPECT_EQ(r->uppercase, CharRule::kDisallow);
  EXPECT_EQ(r->lowercase, CharRule::kDisallow);
  EXPECT_EQ(r->special, CharRule::kDisallow);
  EXPECT_TRUE(Check("1234", {}).ok());
  EXPECT_EQ(Message("12a4", {}), "PIN must not contain lowercase letters");
  EXPECT_EQ(Message("12A4", {}), "PIN must not contain uppercase letters");
  EXPECT_EQ(Message("12#4", {}), "PIN must not contain special characters");
}

TEST(PinRulesTest, ExplicitZeroAllowsWhereAbsentDisallows) {
  PinComplexity c;
  c.uppercase = 0;
  EXPECT_TRUE(Check("12A4", c).ok());  // allowed, not required
  EXPECT_TRUE(Check("1234", c).ok());
  EXPECT_EQ(Message("12a4", c), "PIN must not contain lowercase letters");  // still absent
  c.lowercase = 0;
  c.special = 0;
  EXPECT_TRUE(Check("1a#A", c).ok());
  // Digits: absent means required, 0 means merely allowed.
  EXPECT_EQ(Message("aaaa", c), "PIN must contain at least one digit");
  c.digits = 0;
  EXPECT_TRUE(Check("aaaa", c).ok());
}

TEST(PinRulesTest, RequireRulesNameTheMissingClass) {
  PinComplexity c{.uppercase = 1, .lowercase = 1, .special = 1, .digits = 1};
  EXPECT_TRUE(Check("aB3#", c).ok());
  EXPECT_EQ(Message("ab3#", c), "PIN must contain at least one uppercase letter");
  EXPECT_EQ(Message("AB3#", c), "PIN must contain at least one lowercase letter");
  EXPECT_EQ(Message("aBc#", c), "PIN must contain at least one digit");
  EXPECT_EQ(Message("aB34", c), "PIN must contain at least one special character");
}

TEST(PinRulesTest, DisallowRulesNameTheForbiddenClass) {
  PinComplexity c{.uppercase = 0, .lowercase = 0, .special = 0, .digits = 2};
  EXPECT_TRUE(Check("abCD", c).ok());
  EXPECT_EQ(Message("abC1", c), "PIN must not contain digits");
}

TEST(PinRulesTest, EverySpecialCharacterOfTheDocumentedListIsSpecial) {
  PinComplexity c{.special = 1};
  const std::string specials = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  ASSERT_EQ(specials.size(), 32u);
  for (char ch : specials) {
    std::string pin = "123";
    pin.push_back(ch);
    EXPECT_TRUE(Check(pin, c).ok()) << ch;
  }
  // Space and non-ASCII are not in the list and are refused without echoing them.
  for (std::string pin :
       {std::string("12 34"), std::string("12\xc3\xa9") + "4", std::string("12\t34")}) {
    std::string m = Message(pin, c);
    EXPECT_NE(m.find("may only contain"), std::string::npos) << m;
  }
}

TEST(PinRulesTest, Lengths) {
  PinComplexity c{.minimum_length = 6, .maximum_length = 8};
  EXPECT_EQ(Message("12345", c), "PIN must be at least 6 characters long");
  EXPECT_TRUE(Check("123456", c).ok());
  EXPECT_TRUE(Check("12345678", c).ok());
  EXPECT_EQ(Message("123456789", c), "PIN must be at most 8 characters long");
  EXPECT_EQ(Message("123", {}), "PIN must be at least 4 characters long");
  EXPECT_TRUE(Check(std::string(127, '7'), {}).ok());
  EXPECT_EQ(Message(std::string(128, '7'), {}), "PIN must be at most 127 characters long");
}

TEST(PinRulesTest, InconsistentMinMaxFallsBackToBothDefaults) {
  for (PinComplexity c :
       {PinComplexity{.minimum_length = 10, .maximum_length = 6},
        PinComplexity{.minimum_length = 8, .maximum_length = 8},
        PinComplexity{.minimum_length = 127}, PinComplexity{.maximum_length = 4}}) {
    auto r = ResolvePinRules(c);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->minimum_length, 4);
    EXPECT_EQ(r->maximum_length, 127);
  }
  // Consistent pairs and single values are kept.
  auto r = ResolvePinRules({.minimum_length = 6});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->minimum_length, 6);
  EXPECT_EQ(r->maximum_length, 127);
  r = ResolvePinRules({.maximum_length = 10});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->minimum_length, 4);
  EXPECT_EQ(r->maximum_length, 10);
}

TEST(PinRulesTest, OutOfRangeValuesAreRefusedNamingTheNode) {
  struct Case {
    PinComplexity c;
    const char* node;
  } cases[] = {
      {{.minimum_length = 3}, "MinimumPINLength"},
      {{.maximum_length = 128}, "MaximumPINLength"},
      {{.uppercase = 3}, "UppercaseLetters"},
      {{.lowercase = -1}, "LowercaseLetters"},
      {{.special = 7}, "SpecialCharacters"},
      {{.digits = 9}, "Digits"},
      {{.history = 51}, "History"},
      {{.expiration_days = 731}, "Expiration"},
  };
  for (const auto& c : cases) {
    auto r = ResolvePinRules(c.c);
    ASSERT_FALSE(r.ok()) << c.node;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.node), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(ResolvePinRules({.history = 50, .expiration_days = 730}).ok());
}

TEST(PinRulesTest, AllClassesDisallowedIsAPolicyError) {
  auto r = ResolvePinRules({.digits = 2});  // letters and specials absent = disallowed
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("disallows every character class"), std::string::npos);
}

}  // namespace
}  // namespace dm::container
