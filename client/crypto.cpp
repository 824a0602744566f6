// Crypto++ implementation of the crypto facade (see crypto.hpp for the contracts).
#include "crypto.hpp"

#include <algorithm>
#include <cctype>

#include <cryptopp/aes.h>
#include <cryptopp/base64.h>
#include <cryptopp/filters.h>
#include <cryptopp/modes.h>
#include <cryptopp/osrng.h>
#include <cryptopp/queue.h>
#include <cryptopp/rsa.h>
#include <cryptopp/sha.h>

namespace letterbox::client {
namespace {

constexpr unsigned rsa_key_bits = 1024;
constexpr std::size_t block = protocol::aes_block_size;
const std::array<std::uint8_t, block> zero_iv{};

CryptoPP::AutoSeededRandomPool& rng() {
  thread_local CryptoPP::AutoSeededRandomPool pool;
  return pool;
}

template <typename Key>
byte_buffer der_of(const Key& key) {
  CryptoPP::ByteQueue queue;
  key.DEREncode(queue);
  byte_buffer out(queue.MaxRetrievable());
  queue.Get(out.data(), out.size());
  return out;
}

}  // namespace

// --- RSA ----------------------------------------------------------------------------------

struct private_key::impl {
  CryptoPP::RSA::PrivateKey key;
};

private_key::private_key(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
private_key::private_key(private_key&&) noexcept = default;
private_key& private_key::operator=(private_key&&) noexcept = default;
private_key::~private_key() = default;

private_key private_key::generate() {
  auto state = std::make_unique<impl>();
  state->key.GenerateRandomWithKeySize(rng(), rsa_key_bits);  // public exponent 17
  return private_key(std::move(state));
}

private_key private_key::from_pkcs8(bytes_view der) {
  auto state = std::make_unique<impl>();
  try {
    CryptoPP::ArraySource source(der.data(), der.size(), true);
    state->key.BERDecode(source);
  } catch (const CryptoPP::Exception& e) {
    throw crypto_error(std::string("not a PKCS#8 RSA private key: ") + e.what());
  }
  if (state->key.GetModulus().BitCount() != rsa_key_bits || !state->key.Validate(rng(), 1))
    throw crypto_error("not a valid RSA-1024 private key");
  return private_key(std::move(state));
}

byte_buffer private_key::to_pkcs8() const { return der_of(impl_->key); }

protocol::public_key private_key::public_key() const {
  const auto der = der_of(CryptoPP::RSA::PublicKey(impl_->key));
  if (der.size() != protocol::public_key_size)
    throw crypto_error("public key is " + std::to_string(der.size()) + " bytes, not 160");
  protocol::public_key out{};
  std::copy(der.begin(), der.end(), out.begin());
  return out;
}

byte_buffer private_key::decrypt(bytes_view ciphertext) const {
  try {
    CryptoPP::RSAES_OAEP_SHA_Decryptor decryptor(impl_->key);
    if (ciphertext.size() != decryptor.FixedCiphertextLength())
      throw crypto_error("RSA ciphertext has the wrong length");
    byte_buffer out(decryptor.FixedMaxPlaintextLength());
    auto result = decryptor.Decrypt(rng(), ciphertext.data(), ciphertext.size(), out.data());
    if (!result.isValidCoding) throw crypto_error("RSA ciphertext does not decrypt");
    out.resize(result.messageLength);
    return out;
  } catch (const CryptoPP::Exception& e) {
    throw crypto_error(std::string("RSA decryption failed: ") + e.what());
  }
}

byte_buffer rsa_encrypt(const protocol::public_key& key, bytes_view plaintext) {
  try {
    CryptoPP::RSA::PublicKey public_key;
    CryptoPP::ArraySource source(key.data(), key.size(), true);
    public_key.BERDecode(source);
    CryptoPP::RSAES_OAEP_SHA_Encryptor encryptor(public_key);
    if (plaintext.size() > encryptor.FixedMaxPlaintextLength())
      throw crypto_error("plaintext too long for one RSA block");
    byte_buffer out(encryptor.FixedCiphertextLength());
    encryptor.Encrypt(rng(), plaintext.data(), plaintext.size(), out.data());
    return out;
  } catch (const CryptoPP::Exception& e) {
    throw crypto_error(std::string("RSA encryption failed: ") + e.what());
  }
}

// --- AES ----------------------------------------------------------------------------------

symmetric_key generate_symmetric_key() {
  symmetric_key key{};
  random_fill(key.data(), key.size());
  return key;
}

std::uint64_t aes_ciphertext_size(std::uint64_t plaintext_size) {
  return (plaintext_size / block + 1) * block;
}

byte_buffer aes_encrypt(const symmetric_key& key, bytes_view plaintext) {
  CryptoPP::CBC_Mode<CryptoPP::AES>::Encryption cipher(key.data(), key.size(), zero_iv.data());
  std::string out;
  CryptoPP::ArraySource(plaintext.data(), plaintext.size(), true,
                        new CryptoPP::StreamTransformationFilter(cipher, new CryptoPP::StringSink(out)));
  return byte_buffer(out.begin(), out.end());
}

byte_buffer aes_decrypt(const symmetric_key& key, bytes_view ciphertext) {
  if (ciphertext.empty() || ciphertext.size() % block != 0)
    throw crypto_error("AES ciphertext length is not a positive multiple of 16");
  try {
    CryptoPP::CBC_Mode<CryptoPP::AES>::Decryption cipher(key.data(), key.size(), zero_iv.data());
    std::string out;
    CryptoPP::ArraySource(ciphertext.data(), ciphertext.size(), true,
                          new CryptoPP::StreamTransformationFilter(cipher, new CryptoPP::StringSink(out)));
    return byte_buffer(out.begin(), out.end());
  } catch (const CryptoPP::Exception& e) {
    throw crypto_error(std::string("AES decryption failed: ") + e.what());
  }
}

// Streaming: whole blocks go straight through CBC; PKCS#7 is applied/checked by hand on the
// last block, so memory stays at one chunk plus one block.
struct aes_stream_encryptor::impl {
  CryptoPP::CBC_Mode<CryptoPP::AES>::Encryption cipher;
  std::array<std::uint8_t, block> partial{};
  std::size_t partial_size = 0;
};

aes_stream_encryptor::aes_stream_encryptor(const symmetric_key& key) : impl_(std::make_unique<impl>()) {
  impl_->cipher.SetKeyWithIV(key.data(), key.size(), zero_iv.data());
}
aes_stream_encryptor::aes_stream_encryptor(aes_stream_encryptor&&) noexcept = default;
aes_stream_encryptor::~aes_stream_encryptor() = default;

void aes_stream_encryptor::update(bytes_view plaintext, byte_buffer& out) {
  auto& s = *impl_;
  if (s.partial_size > 0) {  // complete the carried-over block first
    const auto take = std::min(block - s.partial_size, plaintext.size());
    std::copy_n(plaintext.begin(), take, s.partial.begin() + s.partial_size);
    s.partial_size += take;
    plaintext = plaintext.subspan(take);
    if (s.partial_size < block) return;
    const auto at = out.size();
    out.resize(at + block);
    s.cipher.ProcessData(out.data() + at, s.partial.data(), block);
    s.partial_size = 0;
  }
  const auto whole = plaintext.size() / block * block;
  if (whole > 0) {
    const auto at = out.size();
    out.resize(at + whole);
    s.cipher.ProcessData(out.data() + at, plaintext.data(), whole);
  }
  std::copy(plaintext.begin() + whole, plaintext.end(), s.partial.begin());
  s.partial_size = plaintext.size() - whole;
}

void aes_stream_encryptor::finish(byte_buffer& out) {
  auto& s = *impl_;
  const auto pad = static_cast<std::uint8_t>(block - s.partial_size);
  std::fill(s.partial.begin() + s.partial_size, s.partial.end(), pad);
  const auto at = out.size();
  out.resize(at + block);
  s.cipher.ProcessData(out.data() + at, s.partial.data(), block);
  s.partial_size = 0;
}

struct aes_stream_decryptor::impl {
  CryptoPP::CBC_Mode<CryptoPP::AES>::Decryption cipher;
  byte_buffer pending;  // < one block of input, or the held-back last block
};

aes_stream_decryptor::aes_stream_decryptor(const symmetric_key& key) : impl_(std::make_unique<impl>()) {
  impl_->cipher.SetKeyWithIV(key.data(), key.size(), zero_iv.data());
}
aes_stream_decryptor::aes_stream_decryptor(aes_stream_decryptor&&) noexcept = default;
aes_stream_decryptor::~aes_stream_decryptor() = default;

void aes_stream_decryptor::update(bytes_view ciphertext, byte_buffer& out) {
  auto& s = *impl_;
  while (!ciphertext.empty()) {
    if (s.pending.size() < block) {
      const auto take = std::min(block - s.pending.size(), ciphertext.size());
      s.pending.insert(s.pending.end(), ciphertext.begin(), ciphertext.begin() + take);
      ciphertext = ciphertext.subspan(take);
      continue;
    }
    // More input follows, so the pending block is not the last one: decrypt it, then every
    // whole block except what may be the last (1..16 bytes stay for pending).
    const auto whole = (ciphertext.size() - 1) / block * block;
    const auto at = out.size();
    out.resize(at + block + whole);
    s.cipher.ProcessData(out.data() + at, s.pending.data(), block);
    s.cipher.ProcessData(out.data() + at + block, ciphertext.data(), whole);
    s.pending.clear();
    ciphertext = ciphertext.subspan(whole);
  }
}

void aes_stream_decryptor::finish(byte_buffer& out) {
  auto& s = *impl_;
  if (s.pending.size() != block) throw crypto_error("AES ciphertext length is not a positive multiple of 16");
  std::array<std::uint8_t, block> last{};
  s.cipher.ProcessData(last.data(), s.pending.data(), block);
  s.pending.clear();
  const std::uint8_t pad = last[block - 1];
  if (pad == 0 || pad > block ||
      !std::all_of(last.end() - pad, last.end(), [pad](std::uint8_t b) { return b == pad; }))
    throw crypto_error("AES padding is invalid (wrong key?)");
  out.insert(out.end(), last.begin(), last.end() - pad);
}

// --- SHA-256, Base64, random ----------------------------------------------------------------

struct sha256::impl {
  CryptoPP::SHA256 hash;
};
sha256::sha256() : impl_(std::make_unique<impl>()) {}
sha256::sha256(sha256&&) noexcept = default;
sha256::~sha256() = default;
void sha256::update(bytes_view data) { impl_->hash.Update(data.data(), data.size()); }
std::string sha256::hex_digest() {
  std::array<std::uint8_t, CryptoPP::SHA256::DIGESTSIZE> digest{};
  impl_->hash.Final(digest.data());
  return protocol::to_hex(digest);
}

std::string base64_encode(bytes_view data) {
  std::string out;
  CryptoPP::ArraySource(data.data(), data.size(), true,
                        new CryptoPP::Base64Encoder(new CryptoPP::StringSink(out), false));
  return out;
}

byte_buffer base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=')
      throw crypto_error(std::string("invalid Base64 character '") + c + "'");
    clean.push_back(c);
  }
  if (clean.size() % 4 != 0) throw crypto_error("Base64 text length is not a multiple of 4");
  std::string out;
  CryptoPP::StringSource(clean, true, new CryptoPP::Base64Decoder(new CryptoPP::StringSink(out)));
  return byte_buffer(out.begin(), out.end());
}

void random_fill(std::uint8_t* out, std::size_t size) { rng().GenerateBlock(out, size); }

}  // namespace letterbox::client
