#pragma once
// TLS on the WebSocket port (--tls-cert / --tls-key): the stream type of a
// TLS connection and the server context all of them share.
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <string>
#include <type_traits>

namespace notify::gateway {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

template <class Stream>
inline constexpr bool is_tls_v = std::is_same_v<Stream, TlsStream>;

// TLS 1.2 and newer with the certificate chain and key from PEM files;
// throws std::runtime_error naming the file that failed.
std::unique_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& cert_file,
                                                                   const std::string& key_file);

}  // namespace notify::gateway
