#pragma once
// Base64url (RFC 4648 section 5) without padding, as JOSE uses it.
#include <optional>
#include <string>
#include <string_view>

namespace notify::auth {

std::string base64url_encode(std::string_view bytes);
// Strict: unpadded, only the URL-safe alphabet, no stray bits; nullopt otherwise.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace notify::auth
