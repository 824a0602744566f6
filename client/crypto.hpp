// Crypto facade of the client: RSA-1024 (e=17) keys, RSA-OAEP-SHA1, AES-128-CBC (zero IV,
// PKCS#7) one-shot and streaming, SHA-256, Base64. Crypto++ stays behind this header.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "messages.hpp"

namespace letterbox::client {

using protocol::byte_buffer;
using protocol::bytes_view;
using symmetric_key = std::array<std::uint8_t, protocol::symmetric_key_size>;

// The one error type of the crypto layer: a key that does not parse, a ciphertext that does
// not decrypt (wrong key, bad padding, wrong length).
class crypto_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An RSA-1024 private key with public exponent 17. Movable, not copyable.
class private_key {
 public:
  // Generates a fresh key pair whose public key encodes to exactly 160 bytes.
  static private_key generate();
  // Parses PKCS#8 DER; throws crypto_error if the bytes are not a valid RSA private key.
  static private_key from_pkcs8(bytes_view der);

  private_key(private_key&&) noexcept;
  private_key& operator=(private_key&&) noexcept;
  ~private_key();

  // The private key as PKCS#8 DER. A secret: only ever written to me.info, never shown.
  byte_buffer to_pkcs8() const;
  // The X.509 SubjectPublicKeyInfo DER; throws crypto_error if it is not 160 bytes.
  protocol::public_key public_key() const;
  // RSA-OAEP-SHA1 decryption; throws crypto_error if the ciphertext does not decrypt.
  byte_buffer decrypt(bytes_view ciphertext) const;

 private:
  struct impl;
  explicit private_key(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

// RSA-OAEP-SHA1 encryption to a 160-byte X.509 public key; throws crypto_error if the key
// does not parse or the plaintext is too long for one block.
byte_buffer rsa_encrypt(const protocol::public_key& key, bytes_view plaintext);

// A fresh random AES-128 key.
symmetric_key generate_symmetric_key();
// The AES-CBC/PKCS#7 ciphertext size of plaintext_size bytes: (n/16+1)*16.
std::uint64_t aes_ciphertext_size(std::uint64_t plaintext_size);

// One-shot AES-128-CBC, zero IV, PKCS#7. aes_decrypt throws crypto_error on a length that is
// not a positive multiple of 16 or on bad padding.
byte_buffer aes_encrypt(const symmetric_key& key, bytes_view plaintext);
byte_buffer aes_decrypt(const symmetric_key& key, bytes_view ciphertext);

// Streaming AES-128-CBC encryption in constant memory: update() appends the ciphertext of
// every complete block seen so far, finish() appends the padded last block. After finish()
// the object must not be used again.
class aes_stream_encryptor {
 public:
  explicit aes_stream_encryptor(const symmetric_key& key);
  aes_stream_encryptor(aes_stream_encryptor&&) noexcept;
  ~aes_stream_encryptor();
  void update(bytes_view plaintext, byte_buffer& out);
  void finish(byte_buffer& out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Streaming decryption; holds back the last block until finish() checks its padding.
// update() throws nothing; finish() throws crypto_error on a bad length or padding.
class aes_stream_decryptor {
 public:
  explicit aes_stream_decryptor(const symmetric_key& key);
  aes_stream_decryptor(aes_stream_decryptor&&) noexcept;
  ~aes_stream_decryptor();
  void update(bytes_view ciphertext, byte_buffer& out);
  void finish(byte_buffer& out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Incremental SHA-256 (content checks of transferred files).
class sha256 {
 public:
  sha256();
  sha256(sha256&&) noexcept;
  ~sha256();
  void update(bytes_view data);
  std::string hex_digest();  // lowercase; ends the computation

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Base64 without line breaks; decode ignores whitespace and throws crypto_error on
// characters outside the alphabet.
std::string base64_encode(bytes_view data);
byte_buffer base64_decode(std::string_view text);

// Uniformly random bytes from the OS-seeded generator.
void random_fill(std::uint8_t* out, std::size_t size);

}  // namespace letterbox::client
