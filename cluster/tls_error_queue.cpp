// A fix for CAF 0.17's OpenSSL module, linked into the server binary.
//
// OpenSSL requires the thread's error queue to be empty before SSL_read,
// SSL_write, SSL_accept or SSL_connect: SSL_get_error() reports any error
// left in it as the failure of the call. CAF runs every cluster connection
// on one thread and never clears the queue, and OpenSSL 3 leaves an error
// there when a peer vanishes without a TLS close (kill -9, a crash, a
// failed handshake). The next read on any healthy connection then "fails"
// and CAF drops it: killing one node cut the links between the others.
//
// These definitions take the place of libssl's for the whole process
// (the executable comes first in symbol lookup); each clears the queue and
// calls the real function.
#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class Fn>
Fn real(const char* name) {
  static_assert(sizeof(Fn) == sizeof(void*));
  void* sym = dlsym(RTLD_NEXT, name);
  Fn fn;
  __builtin_memcpy(&fn, &sym, sizeof fn);
  return fn;
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto fn = real<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return fn(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto fn = real<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return fn(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static auto fn = real<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return fn(ssl);
}

int SSL_connect(SSL* ssl) {
  static auto fn = real<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return fn(ssl);
}

}  // extern "C"
