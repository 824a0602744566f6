// Tests of the client's crypto facade: key sizes, OAEP, AES known answers, streaming == one-shot.
#include <doctest/doctest.h>

#include <random>

#include "crypto.hpp"

using namespace letterbox::client;
using letterbox::protocol::byte_buffer;

namespace {

byte_buffer from_hex(std::string_view hex) {
  byte_buffer out;
  for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

symmetric_key key_from_hex(std::string_view hex) {
  const auto bytes = from_hex(hex);
  symmetric_key key{};
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

byte_buffer random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 generator(seed);
  byte_buffer out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(generator());
  return out;
}

// Streams input through the encryptor in pieces of the given size.
byte_buffer stream_encrypt(const symmetric_key& key, const byte_buffer& input, std::size_t piece) {
  aes_stream_encryptor encryptor(key);
  byte_buffer out;
  for (std::size_t at = 0; at < input.size(); at += piece)
    encryptor.update(std::span(input).subspan(at, std::min(piece, input.size() - at)), out);
  encryptor.finish(out);
  return out;
}

byte_buffer stream_decrypt(const symmetric_key& key, const byte_buffer& input, std::size_t piece) {
  aes_stream_decryptor decryptor(key);
  byte_buffer out;
  for (std::size_t at = 0; at < input.size(); at += piece)
    decryptor.update(std::span(input).subspan(at, std::min(piece, input.size() - at)), out);
  decryptor.finish(out);
  return out;
}

}  // namespace

TEST_CASE("RSA key pair: 160-byte public key, PKCS#8 round trip") {
  const auto key = private_key::generate();
  const auto pub = key.public_key();
  CHECK(pub.size() == 160);
  CHECK(pub[0] == 0x30);  // DER SEQUENCE
  const auto reloaded = private_key::from_pkcs8(key.to_pkcs8());
  CHECK(reloaded.public_key() == pub);
}

TEST_CASE("RSA-OAEP round trip of a symmetric key, and wrong key or garbage fails") {
  const auto alice = private_key::generate();
  const auto bob = private_key::generate();
  const auto secret = generate_symmetric_key();
  const auto sealed = rsa_encrypt(alice.public_key(), secret);
  CHECK(sealed.size() == 128);
  const auto opened = alice.decrypt(sealed);
  CHECK(byte_buffer(secret.begin(), secret.end()) == opened);
  CHECK_THROWS_AS(bob.decrypt(sealed), crypto_error);
  CHECK_THROWS_AS(alice.decrypt(byte_buffer(10, 1)), crypto_error);
  CHECK(rsa_encrypt(alice.public_key(), secret) != sealed);  // OAEP is randomised
}

TEST_CASE("private key parsing rejects garbage") {
  CHECK_THROWS_AS(private_key::from_pkcs8(byte_buffer{}), crypto_error);
  CHECK_THROWS_AS(private_key::from_pkcs8(byte_buffer(300, 0x30)), crypto_error);
}

TEST_CASE("AES-128-CBC zero IV known answer (NIST SP 800-38A key and block, checked with openssl)") {
  const auto key = key_from_hex("2b7e151628aed2a6abf7158809cf4f3c");
  const auto plain = from_hex("6bc1bee22e409f96e93d7e117393172a");
  const auto expected = from_hex("3ad77bb40d7a3660a89ecaf32466ef974b0673d23da20679744afa8e3d589236");
  CHECK(aes_encrypt(key, plain) == expected);
  CHECK(stream_encrypt(key, plain, 5) == expected);
  CHECK(aes_decrypt(key, expected) == plain);
  CHECK(stream_decrypt(key, expected, 7) == plain);
}

TEST_CASE("AES short text known answer and ciphertext sizes") {
  const auto key = key_from_hex("000102030405060708090a0b0c0d0e0f");
  const std::string text = "Letterbox";
  CHECK(aes_encrypt(key, byte_buffer(text.begin(), text.end())) == from_hex("d2f4fa8ae48c140352f7f1062141521a"));
  CHECK(aes_ciphertext_size(0) == 16);
  CHECK(aes_ciphertext_size(15) == 16);
  CHECK(aes_ciphertext_size(16) == 32);
  CHECK(aes_ciphertext_size(1ull << 30) == (1ull << 30) + 16);
  CHECK(aes_encrypt(key, {}).size() == 16);
}

TEST_CASE("streaming encrypt/decrypt equals one-shot for many sizes and chunkings") {
  const auto key = generate_symmetric_key();
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 1000u, 65536u, 200003u}) {
    const auto plain = random_bytes(size, static_cast<unsigned>(size));
    const auto one_shot = aes_encrypt(key, plain);
    CHECK(one_shot.size() == aes_ciphertext_size(size));
    for (std::size_t piece : {1u, 7u, 16u, 4096u, 65536u}) {
      CAPTURE(size);
      CAPTURE(piece);
      CHECK(stream_encrypt(key, plain, piece) == one_shot);
      CHECK(stream_decrypt(key, one_shot, piece) == plain);
    }
    CHECK(aes_decrypt(key, one_shot) == plain);
  }
}

TEST_CASE("streaming round trip for every size around the block boundaries (all padding lengths)") {
  const auto key = generate_symmetric_key();
  for (std::size_t size = 0; size <= 48; ++size) {
    CAPTURE(size);
    const auto plain = random_bytes(size, static_cast<unsigned>(size) + 100);
    const auto one_shot = aes_encrypt(key, plain);
    CHECK(stream_encrypt(key, plain, 5) == one_shot);
    CHECK(stream_decrypt(key, one_shot, 5) == plain);
    CHECK(aes_decrypt(key, one_shot) == plain);
  }
}

TEST_CASE("AES decryption failures: wrong key, bad length, empty") {
  const auto key = generate_symmetric_key();
  auto other = key;
  other[0] ^= 1;
  const auto ciphertext = aes_encrypt(key, random_bytes(100, 1));
  // A wrong key yields valid padding by chance only ~1/256 of the time; try several messages.
  int failures = 0;
  for (unsigned seed = 0; seed < 8; ++seed) {
    try {
      stream_decrypt(other, aes_encrypt(key, random_bytes(50, seed)), 16);
    } catch (const crypto_error&) {
      ++failures;
    }
  }
  CHECK(failures >= 6);
  CHECK_THROWS_AS(aes_decrypt(key, byte_buffer(15, 0)), crypto_error);
  CHECK_THROWS_AS(aes_decrypt(key, byte_buffer{}), crypto_error);
  CHECK_THROWS_AS(stream_decrypt(key, byte_buffer(33, 0), 8), crypto_error);
  CHECK_THROWS_AS(stream_decrypt(key, byte_buffer{}, 8), crypto_error);
}

TEST_CASE("SHA-256 and Base64") {
  sha256 hash;
  const std::string abc = "abc";
  hash.update(byte_buffer(abc.begin(), abc.end()));
  CHECK(hash.hex_digest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const auto data = random_bytes(1000, 3);
  const auto text = base64_encode(data);
  CHECK(text.find('\n') == std::string::npos);
  CHECK(base64_decode(text) == data);
  CHECK(base64_decode("TWFu\nTWFu") == byte_buffer{'M', 'a', 'n', 'M', 'a', 'n'});
  CHECK_THROWS_AS(base64_decode("TW*u"), crypto_error);
  CHECK_THROWS_AS(base64_decode("TWF"), crypto_error);
}
