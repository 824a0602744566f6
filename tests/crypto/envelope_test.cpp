// Sealed envelopes (docs/PROTOCOL.md §16): golden vectors from an independent implementation
// (golden_envelope.py, python3-cryptography), round trips at the chunk edges with any feeding
// pattern, every kind of tampering (each byte flipped, truncation, reordering, splicing,
// extension, wrong keys, wrong signer, wrong type, chunk size, low-order ephemeral key,
// malformed metadata crafted with the raw primitives), the end signature (content sealed by the
// recipient under a sender's header, trailers flipped, cut, swapped or followed by bytes), the
// size formula, and constant memory.
#include <cryptopp/chachapoly.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/sha.h>
#include <cryptopp/xed25519.h>
#include <doctest/doctest.h>
#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "agreement.hpp"
#include "envelope.hpp"
#include "identity.hpp"
#include "kat.hpp"

using namespace letterbox;
namespace cr = letterbox::crypto;
using letterbox::test::array_from_hex;
using letterbox::test::from_hex;
using letterbox::test::to_hex;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t all_at_once = std::numeric_limits<std::size_t>::max();
constexpr std::size_t head_size = 134 + 305;  // header + chunk 0
constexpr std::size_t full_chunk = 65536 + 16;
constexpr std::size_t end_size = 64;          // the end signature after the final chunk

struct party {
  cr::identity_secret identity{};
  cr::identity_key identity_key{};
  cr::client_id id{};
  cr::agreement_secret agreement{};
  cr::agreement_key agreement_key{};
};

party make_party(std::uint8_t seed) {
  party p;
  for (std::size_t i = 0; i < p.identity.size(); ++i) {
    p.identity[i] = static_cast<std::uint8_t>(seed * 31 + i * 7);
    p.agreement[i] = static_cast<std::uint8_t>(seed * 17 + i * 13 + 1);
  }
  p.identity_key = cr::public_key_of(p.identity);
  p.id = cr::derive_client_id(p.identity_key);
  p.agreement_key = cr::agreement_public_of(p.agreement);
  return p;
}

const party alice = make_party(1);
const party bob = make_party(2);
const party carol = make_party(3);
const party mallory = make_party(4);

bytes pattern(std::size_t n, std::uint32_t seed) {
  bytes out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

bytes to_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

// Records what the reader hands out; knows the identity keys of `known` senders.
struct recorder final : cr::envelope_handler {
  std::vector<party> known;
  cr::agreement_secret own{};
  std::optional<cr::identity_key> key_override;  // answer this key whoever the sender is
  int keys_calls = 0;
  int metadata_calls = 0;
  std::optional<cr::envelope_metadata> meta;
  bytes got;
  std::size_t pieces = 0;
  std::size_t largest_piece = 0;

  std::optional<cr::envelope_keys> keys(const cr::envelope_header& h) override {
    ++keys_calls;
    if (key_override) return cr::envelope_keys{*key_override, own};
    for (const auto& p : known)
      if (p.id == h.sender) return cr::envelope_keys{p.identity_key, own};
    return std::nullopt;
  }
  void metadata(const cr::envelope_metadata& m) override {
    ++metadata_calls;
    meta = m;
  }
  void body(cr::bytes_view piece) override {
    got.insert(got.end(), piece.begin(), piece.end());
    ++pieces;
    largest_piece = std::max(largest_piece, piece.size());
  }
};

recorder recorder_of(const party& me, const party& sender) {
  recorder r;
  r.known = {sender};
  r.own = me.agreement;
  return r;
}

cr::envelope_expectations expect(const party& from, const party& to, cr::envelope_type type,
                                 std::optional<std::uint64_t> size) {
  cr::envelope_expectations e;
  e.type = type;
  e.sender = from.id;
  e.recipient = to.id;
  e.content_size = size;
  return e;
}

struct opened {
  bool ok = false;
  cr::open_error error = cr::open_error::none;
  std::uint64_t consumed = 0;
  recorder rec;
};

opened open_with(const bytes& content, const cr::envelope_expectations& e, recorder rec,
                 std::size_t step = all_at_once) {
  opened o;
  o.rec = std::move(rec);
  cr::envelope_reader reader(e, o.rec);
  for (std::size_t off = 0; off < content.size();) {
    const std::size_t n = std::min(step, content.size() - off);
    reader.feed(cr::bytes_view(content.data() + off, n));
    off += n;
  }
  o.ok = reader.finish();
  o.error = reader.error();
  o.consumed = reader.consumed();
  CHECK(o.ok == reader.complete());
  CHECK(o.ok == (o.error == cr::open_error::none));
  return o;
}

// Bob opens what `from` sent him, the entry's size known (as from a PULL) or not.
opened open_by_bob(const bytes& content, const party& from, cr::envelope_type type,
                   bool size_known = true, std::size_t step = all_at_once) {
  return open_with(content, expect(from, bob, type, size_known ? std::optional<std::uint64_t>(content.size()) : std::nullopt),
                   recorder_of(bob, from), step);
}

cr::seal_request request(const party& from, const party& to, cr::envelope_type type,
                         std::string name, std::uint64_t body_size) {
  cr::seal_request r;
  r.sender = from.id;
  r.recipient = to.id;
  r.recipient_key = to.agreement_key;
  r.type = type;
  r.name = std::move(name);
  r.body_size = body_size;
  r.sent_at_ms = 1764590400000ull;
  return r;
}

bytes seal_with(cr::envelope_writer& writer, const bytes& body, std::size_t piece) {
  cr::vector_sink sink;
  writer.begin(sink);
  for (std::size_t off = 0; off < body.size();) {
    const std::size_t n = std::min(piece, body.size() - off);
    writer.seal(cr::bytes_view(body.data() + off, n), sink);
    off += n;
  }
  writer.finish(sink);
  CHECK(sink.bytes.size() == writer.content_size());
  return std::move(sink.bytes);
}

bytes seal(const party& from, const party& to, cr::envelope_type type, const std::string& name,
           const bytes& body, std::size_t piece = all_at_once) {
  cr::envelope_writer writer(from.identity, request(from, to, type, name, body.size()));
  return seal_with(writer, body, piece);
}

// ------------------------------------------------- crafting with the raw primitives only
// (Crypto++ directly, no envelope.cpp), to build envelopes a correct writer never makes.

bytes craft_header(std::uint8_t format, std::uint8_t type, const party& from, const party& to,
                   const cr::agreement_key& ephemeral, std::uint32_t chunk_size,
                   const cr::identity_secret& signer) {
  // The 70 signed bytes written in place (growing the vector with insert warns -Warray-bounds
  // under g++ 12 -O3, falsely).
  bytes h(70);
  h[0] = format;
  h[1] = type;
  std::copy(from.id.begin(), from.id.end(), h.begin() + 2);
  std::copy(to.id.begin(), to.id.end(), h.begin() + 18);
  std::copy(ephemeral.begin(), ephemeral.end(), h.begin() + 34);
  for (int i = 0; i < 4; ++i) h[66 + i] = static_cast<std::uint8_t>(chunk_size >> (8 * i));
  auto sig = cr::sign(signer, "letterbox/v2/envelope", {cr::bytes_view(h)});
  h.insert(h.end(), sig.begin(), sig.end());
  REQUIRE(h.size() == 134);
  return h;
}

bytes craft_key(const bytes& header, const cr::agreement_secret& ephemeral, const cr::agreement_key& to) {
  CryptoPP::x25519 x;
  bytes shared(32);
  REQUIRE(x.Agree(shared.data(), ephemeral.data(), to.data(), false));
  bytes info = to_bytes("letterbox/v2/content-key");
  info.push_back(0);
  info.insert(info.end(), header.begin(), header.end());
  bytes key(32);
  CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
  hkdf.DeriveKey(key.data(), key.size(), shared.data(), shared.size(), nullptr, 0, info.data(),
                 info.size());
  return key;
}

bytes craft_chunk(const bytes& key, std::uint64_t index, bool last, const bytes& plain) {
  bytes nonce(12, 0);
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<std::uint8_t>(index >> (8 * (7 - i)));
  nonce[11] = last ? 1 : 0;
  bytes out(plain.size() + 16);
  CryptoPP::ChaCha20Poly1305::Encryption enc;
  enc.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
  enc.EncryptAndAuthenticate(out.data(), out.data() + plain.size(), 16, nonce.data(), 12, nullptr, 0,
                             plain.data(), plain.size());
  return out;
}

// replay ID[16] sent at[8] body size[8] name size[2] name field[255]
bytes craft_metadata(std::uint64_t body_size, std::uint16_t name_size, const bytes& name_field) {
  bytes m(16, 0xab);
  for (int i = 0; i < 8; ++i) m.push_back(static_cast<std::uint8_t>(1764590400000ull >> (8 * i)));
  for (int i = 0; i < 8; ++i) m.push_back(static_cast<std::uint8_t>(body_size >> (8 * i)));
  m.push_back(static_cast<std::uint8_t>(name_size));
  m.push_back(static_cast<std::uint8_t>(name_size >> 8));
  bytes field = name_field;
  field.resize(255, 0);
  m.insert(m.end(), field.begin(), field.end());
  REQUIRE(m.size() == 289);
  return m;
}

// The end signature of `signer` over header[134] || SHA-512(chunks), chunks = every chunk's
// ciphertext with its tag, as sent.
bytes craft_end(const bytes& header, const bytes& chunks, const cr::identity_secret& signer) {
  REQUIRE(header.size() == 134);
  bytes digest(64);
  CryptoPP::SHA512().CalculateDigest(digest.data(), chunks.data(), chunks.size());
  const auto sig = cr::sign(signer, "letterbox/v2/envelope-end", {cr::bytes_view(header), cr::bytes_view(digest)});
  return bytes(sig.begin(), sig.end());
}

struct crafted_chunk {
  std::uint64_t index;
  bool last;
  bytes plain;
};

// alice -> bob, header of the given fields, chunks as given (index, last flag, plaintext), and
// alice's end signature over them.
bytes craft(std::uint8_t type, const std::vector<crafted_chunk>& chunks, std::uint8_t format = 1,
            std::uint32_t chunk_size = 65536) {
  const auto eph = array_from_hex<cr::agreement_secret>(
      "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const bytes header = craft_header(format, type, alice, bob, cr::agreement_public_of(eph),
                                    chunk_size, alice.identity);
  const bytes key = craft_key(header, eph, bob.agreement_key);
  bytes sealed;
  for (const auto& c : chunks) {
    auto chunk = craft_chunk(key, c.index, c.last, c.plain);
    sealed.insert(sealed.end(), chunk.begin(), chunk.end());
  }
  bytes out = header;
  out.insert(out.end(), sealed.begin(), sealed.end());
  const bytes end = craft_end(header, sealed, alice.identity);
  out.insert(out.end(), end.begin(), end.end());
  return out;
}

bytes splice(bytes a, std::size_t at, const bytes& b, std::size_t from, std::size_t n) {
  std::copy_n(b.begin() + from, n, a.begin() + at);
  return a;
}

// "text hex" of tests/crypto/golden_envelope.py: "Hello, Bob!" from the RFC 8032 TEST 1 key.
const std::string golden_text_hex =
    "01102a74c5d1cb7b0ef00845021046f8ad22d5226e5a2e8bcfa0a68d6e8b0cc398188520f0098930a754748b"
    "7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a00000100bbba34573a40fe33905e6e89fc10521d957b"
    "e27747baec15a0b2a16afe5301aff85603dd11541d60e7e3e7fb78811065fa2546c3eab2cb43aca327591e44"
    "110851575c7feaad68e8cc07e98b03824f6c96a15c1e5c5fabd597b9a5978f870ff950021e69ae9f6683ad22"
    "884c687613be511be4158dffe6ddd3d5fc81331b652c08db14f2347406c0c34c715175ca2a8436429806eb0e"
    "d8b27ced3be9d59d972bee6310bb61951f8e54a5c714f5bc9d6393c4e4c89c107233494a05b47ba2db9ce8b6"
    "878618e19521778156b74e369af608f655d1f678c5060cf9ea8a1bdd6c32debb33fa97574771283ce3581fa0"
    "8d6b5ba01a80ee90988b064c67f5897f4218efd6601751add14bc74da1c01860fd3360995fcfa26320587f35"
    "55d0f9941a6904d8af16443adfb5549776e1a95364590ea7e8a55e438d4420fce087bdc0b95d338749d2ec80"
    "56212ccb13623278c419a623fcfc1ab46ae550caa20b41feab3edfc66b5c82c4abd0cf8319d95c3febcb1bf4"
    "2173b6642fd7c0bce26dcc20712b61542d1796a56f5bc39d247c"
    "f640b56cb4645876102d003c229556d2f8c80727174c5acbbb9298da8389f2565573e347ae1b05ee3a006d06"
    "08ad05f819ae3c7ca000b044f62353d3d0c8d503";

std::size_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

}  // namespace

TEST_SUITE("crypto envelope") {
  TEST_CASE("golden vectors: the byte layout of §16, equal to an independent implementation") {
    // Inputs of tests/crypto/golden_envelope.py: sender = RFC 8032 TEST 1 seed, recipient ID
    // derived from the TEST 2 key, recipient agreement key = RFC 7748 Bob, ephemeral = Alice.
    const auto seed = array_from_hex<cr::identity_secret>(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    const auto bob_secret = array_from_hex<cr::agreement_secret>(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const auto recipient_identity = array_from_hex<cr::identity_key>(
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    cr::seal_request req;
    req.sender = cr::derive_client_id(cr::public_key_of(seed));
    req.recipient = cr::derive_client_id(recipient_identity);
    req.recipient_key = cr::agreement_public_of(bob_secret);
    req.type = cr::envelope_type::text;
    req.sent_at_ms = 1764590400000ull;
    cr::seal_randomness fixed;
    fixed.ephemeral_secret = array_from_hex<cr::agreement_secret>(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    for (std::size_t i = 0; i < 16; ++i) fixed.replay[i] = static_cast<std::uint8_t>(i);

    const std::string text = "Hello, Bob!";
    req.body_size = text.size();
    cr::envelope_writer writer(seed, req, fixed);
    const bytes env = seal_with(writer, to_bytes(text), all_at_once);
    CHECK(env.size() == 530);
    // The layout, field by field.
    CHECK(env[0] == 1);
    CHECK(env[1] == 16);
    CHECK(to_hex(bytes(env.begin() + 2, env.begin() + 18)) == to_hex(req.sender));
    CHECK(to_hex(bytes(env.begin() + 18, env.begin() + 34)) == to_hex(req.recipient));
    CHECK(to_hex(bytes(env.begin() + 34, env.begin() + 66)) ==
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");  // RFC 7748 Alice
    CHECK(to_hex(bytes(env.begin() + 66, env.begin() + 70)) == "00000100");      // 65,536 LE
    cr::signature sig{};
    std::copy_n(env.begin() + 70, 64, sig.begin());
    CHECK(cr::verify(cr::public_key_of(seed), "letterbox/v2/envelope",
                     {cr::bytes_view(env.data(), 70)}, sig));
    CHECK(writer.replay() == fixed.replay);
    CHECK(writer.header().sig == sig);
    // Chunk 0 (305) and the body chunk (11 + 16), then the end signature over header[134] ||
    // SHA-512 of those two ciphertexts, under its own label.
    const std::size_t end_at = 134 + 305 + 11 + 16;
    REQUIRE(env.size() == end_at + 64);
    bytes chunks_digest(64);
    CryptoPP::SHA512().CalculateDigest(chunks_digest.data(), env.data() + 134, end_at - 134);
    cr::signature end{};
    std::copy_n(env.begin() + static_cast<std::ptrdiff_t>(end_at), 64, end.begin());
    CHECK(cr::verify(cr::public_key_of(seed), "letterbox/v2/envelope-end",
                     {cr::bytes_view(env.data(), 134), cr::bytes_view(chunks_digest)}, end));
    CHECK_FALSE(cr::verify(cr::public_key_of(seed), "letterbox/v2/envelope",
                           {cr::bytes_view(env.data(), 134), cr::bytes_view(chunks_digest)}, end));
    CHECK(cr::labels::envelope_end == "letterbox/v2/envelope-end");
    CHECK(to_hex(end) ==
          "f640b56cb4645876102d003c229556d2f8c80727174c5acbbb9298da8389f256"
          "5573e347ae1b05ee3a006d0608ad05f819ae3c7ca000b044f62353d3d0c8d503");  // "text end signature"

    // Whole bytes as golden_envelope.py prints them ("text hex").
    CHECK(to_hex(env) == golden_text_hex);

    // The recipient opens it.
    recorder rec;
    rec.key_override = cr::public_key_of(seed);
    rec.own = bob_secret;
    cr::envelope_expectations e;
    e.type = cr::envelope_type::text;
    e.sender = req.sender;
    e.recipient = req.recipient;
    e.content_size = env.size();
    auto o = open_with(env, e, rec);
    REQUIRE(o.ok);
    CHECK(std::string(o.rec.got.begin(), o.rec.got.end()) == text);
    CHECK(o.rec.meta->replay == fixed.replay);
    CHECK(o.rec.meta->sent_at_ms == 1764590400000ull);
    CHECK(o.rec.meta->body_size == text.size());
    CHECK(o.rec.meta->name.empty());

    // A file of two body chunks (65,539 bytes), name "report.pdf": "file sha256".
    bytes body(65536 + 3);
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>((i * 7 + 3) & 0xff);
    req.type = cr::envelope_type::file;
    req.name = "report.pdf";
    req.body_size = body.size();
    cr::envelope_writer file_writer(seed, req, fixed);
    const bytes file_env = seal_with(file_writer, body, 1000);
    CHECK(file_env.size() == 66074);
    std::array<std::uint8_t, 32> digest{};
    CryptoPP::SHA256().CalculateDigest(digest.data(), file_env.data(), file_env.size());
    CHECK(to_hex(digest) == "5537e6869bdfef3d7221cd626f81a93355dcc5b7faa4726da28b8116379207b2");
  }

  TEST_CASE("the exact size formula: 134 + 305 + body + 16 n + 64, and the bytes produced") {
    CHECK(cr::envelope_content_size(0) == 503);
    CHECK(cr::envelope_content_size(1) == 520);
    CHECK(cr::envelope_content_size(65536) == 439 + 65536 + 16 + 64);
    CHECK(cr::envelope_content_size(65537) == 439 + 65537 + 32 + 64);
    CHECK(cr::envelope_body_chunks(0) == 0);
    CHECK(cr::envelope_body_chunks(65536) == 1);
    CHECK(cr::envelope_body_chunks(65537) == 2);
    for (std::uint64_t n : {0ull, 1ull, 2ull, 65535ull, 65536ull, 65537ull, 131072ull, 131073ull, 1000000ull}) {
      const std::uint64_t chunks = (n + 65535) / 65536;
      const std::uint64_t formula = 134 + 305 + n + 16 * chunks + 64;
      CHECK(cr::envelope_content_size(n) == formula);
      cr::envelope_writer w(alice.identity, request(alice, bob, cr::envelope_type::file, "f", n));
      CHECK(w.content_size() == formula);
      const bytes env = seal_with(w, pattern(static_cast<std::size_t>(n), 7), 30000);
      CHECK(env.size() == formula);
    }
  }

  TEST_CASE("round trips at the chunk edges, any writer pieces, any reader feeding") {
    const std::size_t sizes[] = {0, 1, 65535, 65536, 65537, (1u << 20) + 12345};
    for (std::size_t size : sizes) {
      const bytes body = pattern(size, static_cast<std::uint32_t>(size));
      for (std::size_t piece : {all_at_once, std::size_t{1000}, std::size_t{1}}) {
        if (piece == 1 && size > 70000) continue;
        const bytes env = seal(alice, bob, cr::envelope_type::file, "photo.jpg", body, piece);
        for (std::size_t step : {all_at_once, std::size_t{1}, std::size_t{4099}, full_chunk}) {
          for (bool size_known : {true, false}) {
            CAPTURE(size);
            CAPTURE(piece);
            CAPTURE(step);
            CAPTURE(size_known);
            auto o = open_by_bob(env, alice, cr::envelope_type::file, size_known, step);
            REQUIRE(o.ok);
            CHECK(o.rec.got == body);
            CHECK(o.consumed == env.size());
            CHECK(o.rec.keys_calls == 1);
            CHECK(o.rec.metadata_calls == 1);
            CHECK(o.rec.meta->name == "photo.jpg");
            CHECK(o.rec.meta->body_size == size);
            CHECK(o.rec.meta->sent_at_ms == 1764590400000ull);
            CHECK(o.rec.pieces == cr::envelope_body_chunks(size));
            CHECK(o.rec.largest_piece <= 65536);
          }
        }
      }
    }
  }

  TEST_CASE("texts: empty, one byte, UTF-8 split across chunks; seal_text and open_text") {
    for (std::string text : {std::string(), std::string("x"), std::string(65535, 'a') + "\xc3\xa9",
                             std::string("gr\xc3\xbc\xc3\x9f dich \xf0\x9f\x99\x82")}) {
      const bytes env = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, text);
      CHECK(env.size() == cr::envelope_content_size(text.size()));
      for (std::size_t step : {all_at_once, std::size_t{1}}) {
        auto o = open_by_bob(env, alice, cr::envelope_type::text, step == 1, step);
        REQUIRE(o.ok);
        CHECK(std::string(o.rec.got.begin(), o.rec.got.end()) == text);
      }
      auto t = cr::open_text(env, alice.id, bob.id, [](const cr::envelope_header& h) {
        CHECK(h.sender == alice.id);
        return std::optional<cr::envelope_keys>(cr::envelope_keys{alice.identity_key, bob.agreement});
      });
      REQUIRE(t.ok());
      CHECK(t.text == text);
      CHECK(t.metadata.body_size == text.size());
      auto wrong = cr::open_text(env, alice.id, bob.id, [](const cr::envelope_header&) {
        return std::optional<cr::envelope_keys>(cr::envelope_keys{alice.identity_key, carol.agreement});
      });
      CHECK_FALSE(wrong.ok());
      CHECK(wrong.error == cr::open_error::bad_chunk);
      CHECK(wrong.text.empty());
    }
  }

  TEST_CASE("texts that are not UTF-8 without NUL: refused by seal_text, and by the reader") {
    CHECK_THROWS_AS(cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "\xff"),
                    std::invalid_argument);
    CHECK_THROWS_AS(cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key,
                                  std::string("a\0b", 3)),
                    std::invalid_argument);
    CHECK_THROWS_AS(cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "\xed\xa0\x80"),
                    std::invalid_argument);  // a UTF-16 surrogate
    // The streaming writer does not check a text's encoding; the reader does.
    for (const bytes& body : {bytes{0xff}, bytes{'a', 0, 'b'}, bytes{'a', 0xc3}, bytes{0xc0, 0x80},
                              bytes{0xf4, 0x90, 0x80, 0x80}}) {
      const bytes env = seal(alice, bob, cr::envelope_type::text, "", body);
      auto o = open_by_bob(env, alice, cr::envelope_type::text);
      CHECK_FALSE(o.ok);
      CHECK(o.error == cr::open_error::invalid_text);
    }
    // The same bytes as a file are fine.
    auto o = open_by_bob(seal(alice, bob, cr::envelope_type::file, "x", bytes{0xff, 0}), alice,
                         cr::envelope_type::file);
    CHECK(o.ok);
  }

  TEST_CASE("flipping any single byte of a small envelope fails; before the end signature nothing of the body is handed out") {
    const bytes body = pattern(100, 3);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "notes.txt", body);
    REQUIRE(env.size() == 439 + 100 + 16 + 64);
    const std::size_t end_at = env.size() - end_size;
    REQUIRE(open_by_bob(env, alice, cr::envelope_type::file).ok);
    int failures = 0;
    for (std::size_t i = 0; i < env.size(); ++i) {
      for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
        bytes bad = env;
        bad[i] ^= mask;
        for (bool size_known : {true, false}) {
          CAPTURE(i);
          CAPTURE(size_known);
          auto o = open_by_bob(bad, alice, cr::envelope_type::file, size_known);
          CHECK_FALSE(o.ok);
          if (i < head_size) CHECK(o.rec.metadata_calls == 0);
          if (i < end_at) {
            CHECK(o.rec.got.empty());
          } else {
            // The chunks verified and were handed out provisionally; the end signature refuses.
            CHECK(o.error == cr::open_error::bad_end_signature);
            CHECK(o.rec.got == body);
          }
          failures += o.ok ? 0 : 1;
        }
      }
    }
    CHECK(failures == static_cast<int>(env.size()) * 4);
  }

  TEST_CASE("truncation at every chunk boundary and inside chunks fails") {
    const bytes body = pattern(3 * 65536 + 100, 11);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "big.bin", body);
    REQUIRE(env.size() == 439 + body.size() + 4 * 16 + 64);
    const std::size_t end_at = env.size() - end_size;  // cuts in the end signature: below
    std::vector<std::size_t> cuts = {0, 1, 70, 133, 134, 135, 300, 438, 439, 440, end_at - 16,
                                     end_at - 1};
    for (std::size_t k = 1; k <= 3; ++k) {
      const std::size_t boundary = head_size + k * full_chunk;
      for (std::size_t c : {boundary - 1, boundary, boundary + 1, boundary + 30000})
        if (c < end_at) cuts.push_back(c);
      cuts.push_back(head_size + (k - 1) * full_chunk + 1);
    }
    for (std::size_t cut : cuts) {
      REQUIRE(cut < end_at);
      const bytes part(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(cut));
      CAPTURE(cut);
      auto unknown = open_with(part, expect(alice, bob, cr::envelope_type::file, std::nullopt),
                               recorder_of(bob, alice));
      CHECK_FALSE(unknown.ok);
      CHECK(unknown.rec.got.size() < body.size());
      // The entry claims the truncated size (the attacker fixed the wire's size field) ...
      auto claimed = open_with(part, expect(alice, bob, cr::envelope_type::file, cut),
                               recorder_of(bob, alice));
      CHECK_FALSE(claimed.ok);
      // ... or the original one.
      auto original = open_with(part, expect(alice, bob, cr::envelope_type::file, env.size()),
                                recorder_of(bob, alice));
      CHECK_FALSE(original.ok);
      if (cut > head_size) CHECK(original.error == cr::open_error::truncated);
    }
    // At a boundary with the size unknown: "truncated", the chunks before it verified.
    const std::size_t two = head_size + 2 * full_chunk;
    auto o = open_with(bytes(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(two)),
                       expect(alice, bob, cr::envelope_type::file, std::nullopt), recorder_of(bob, alice));
    CHECK(o.error == cr::open_error::truncated);
    CHECK(o.rec.got.size() == 2 * 65536);
    // Cut after chunk 0 of a non-empty body, size unknown: chunk 0 verifies as a non-final
    // chunk (last = 0, body size > 0), then the content ends.
    auto o0 = open_with(bytes(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(head_size)),
                        expect(alice, bob, cr::envelope_type::file, std::nullopt), recorder_of(bob, alice));
    CHECK(o0.error == cr::open_error::truncated);
    CHECK(o0.rec.metadata_calls == 1);
    CHECK(o0.rec.got.empty());
    // Claimed as an empty body's size (503): chunk 0 is opened as final, its tag refuses that.
    auto o1 = open_with(bytes(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(head_size + end_size)),
                        expect(alice, bob, cr::envelope_type::file, head_size + end_size), recorder_of(bob, alice));
    CHECK(o1.error == cr::open_error::bad_chunk);
  }

  TEST_CASE("reordering, duplicating or splicing chunks fails") {
    const bytes body = pattern(3 * 65536 + 100, 21);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "big.bin", body);
    const std::size_t c1 = head_size, c2 = head_size + full_chunk, c3 = head_size + 2 * full_chunk;
    bytes swapped = splice(splice(env, c1, env, c2, full_chunk), c2, env, c1, full_chunk);
    auto o = open_by_bob(swapped, alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.got.empty());
    bytes swapped23 = splice(splice(env, c2, env, c3, full_chunk), c3, env, c2, full_chunk);
    o = open_by_bob(swapped23, alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.got.size() == 65536);
    bytes duplicated = splice(env, c2, env, c1, full_chunk);
    CHECK(open_by_bob(duplicated, alice, cr::envelope_type::file).error == cr::open_error::bad_chunk);

    // Another envelope from the same sender to the same recipient, same sizes.
    const bytes other = seal(alice, bob, cr::envelope_type::file, "big.bin", pattern(body.size(), 22));
    REQUIRE(other.size() == env.size());
    o = open_by_bob(splice(env, c2, other, c2, full_chunk), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.got.size() == 65536);
    // Its header and chunk 0 with our body chunks; our header with its chunk 0.
    o = open_by_bob(splice(env, 0, other, 0, head_size), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.got.empty());
    o = open_by_bob(splice(env, 134, other, 134, 305), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.metadata_calls == 0);
    // Its final chunk in place of ours (the same length), with or without its end signature.
    const std::size_t last = head_size + 3 * full_chunk;
    o = open_by_bob(splice(env, last, other, last, env.size() - end_size - last), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
    o = open_by_bob(splice(env, last, other, last, env.size() - last), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
  }

  TEST_CASE("appending bytes fails") {
    const bytes env = seal(alice, bob, cr::envelope_type::file, "a", pattern(5000, 5));
    // One byte, two, the final chunk again, the end signature again.
    for (const bytes& extra : {bytes{0}, bytes{0x42, 0x43}, bytes(env.end() - 64 - 5016, env.end() - 64),
                               bytes(env.end() - 64, env.end())}) {
      bytes longer = env;
      longer.insert(longer.end(), extra.begin(), extra.end());
      auto unknown = open_by_bob(longer, alice, cr::envelope_type::file, false);
      CHECK(unknown.error == cr::open_error::trailing_data);
      auto known = open_by_bob(longer, alice, cr::envelope_type::file, true);
      CHECK(known.error == cr::open_error::size_mismatch);
      CHECK(known.rec.got.empty());
      auto bytewise = open_by_bob(longer, alice, cr::envelope_type::file, false, 1);
      CHECK(bytewise.error == cr::open_error::trailing_data);
    }
    // An empty text plus one byte: in a stream, chunk 0 and the end signature verify, then the
    // byte is refused; with the size known (504), chunk 0 is opened as not final, which its tag
    // refuses.
    bytes text = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "");
    REQUIRE(text.size() == 503);
    text.push_back(0);
    CHECK(open_by_bob(text, alice, cr::envelope_type::text, false).error == cr::open_error::trailing_data);
    CHECK(open_by_bob(text, alice, cr::envelope_type::text, true).error == cr::open_error::bad_chunk);
    // And the reader refuses bytes fed after the end even in a separate call.
    recorder rec = recorder_of(bob, alice);
    cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::file, std::nullopt), rec);
    CHECK(reader.feed(env));
    CHECK_FALSE(reader.feed(bytes{1}));
    CHECK(reader.error() == cr::open_error::trailing_data);
    CHECK_FALSE(reader.finish());
  }

  TEST_CASE("wrong keys, another signer, unknown sender, misrouting") {
    const bytes body = pattern(70000, 9);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "x.bin", body);
    // The recipient's agreement secret is not the one the envelope was sealed to.
    recorder wrong_secret = recorder_of(bob, alice);
    wrong_secret.own = carol.agreement;
    auto o = open_with(env, expect(alice, bob, cr::envelope_type::file, env.size()), wrong_secret);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.metadata_calls == 0);
    // Carol's envelope is not opened by Bob (and the reverse).
    const bytes to_carol = seal(alice, carol, cr::envelope_type::file, "x.bin", body);
    CHECK(open_by_bob(to_carol, alice, cr::envelope_type::file).error == cr::open_error::wrong_recipient);
    // Mallory signs an envelope claiming to be from Alice.
    cr::envelope_writer forged_writer(mallory.identity, request(alice, bob, cr::envelope_type::file, "x.bin", body.size()));
    const bytes forged = seal_with(forged_writer, body, all_at_once);
    o = open_by_bob(forged, alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_signature);
    CHECK(o.rec.keys_calls == 1);
    CHECK(o.rec.metadata_calls == 0);
    // ... and a lookup that answered Mallory's key for Alice's ID.
    recorder lying = recorder_of(bob, alice);
    lying.key_override = mallory.identity_key;
    o = open_with(forged, expect(alice, bob, cr::envelope_type::file, forged.size()), lying);
    CHECK(o.error == cr::open_error::sender_key_mismatch);
    // The entry says the message came from Carol.
    o = open_with(env, expect(carol, bob, cr::envelope_type::file, env.size()), recorder_of(bob, carol));
    CHECK(o.error == cr::open_error::wrong_sender);
    // Nobody's key is known.
    recorder nobody = recorder_of(bob, alice);
    nobody.known.clear();
    o = open_with(env, expect(alice, bob, cr::envelope_type::file, env.size()), nobody);
    CHECK(o.error == cr::open_error::unknown_sender);
    CHECK(o.rec.keys_calls == 1);
  }

  TEST_CASE("header type other than the message type fails") {
    const bytes file = seal(alice, bob, cr::envelope_type::file, "x", bytes{'h', 'i'});
    auto o = open_by_bob(file, alice, cr::envelope_type::text);
    CHECK(o.error == cr::open_error::wrong_type);
    CHECK(o.rec.keys_calls == 0);
    const bytes text = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "hi");
    CHECK(open_by_bob(text, alice, cr::envelope_type::file).error == cr::open_error::wrong_type);
    // A validly signed header of type 18, 1 or 0.
    for (std::uint8_t t : {std::uint8_t{18}, std::uint8_t{1}, std::uint8_t{0}}) {
      const bytes env = craft(t, {{0, true, craft_metadata(0, 0, {})}});
      CHECK(open_by_bob(env, alice, cr::envelope_type::text).error == cr::open_error::wrong_type);
    }
  }

  TEST_CASE("crafted headers: format, chunk size, low-order ephemeral keys are refused") {
    const bytes meta = craft_metadata(0, 0, {});
    // Control: the crafting helpers build an envelope the reader accepts.
    const bytes good = craft(16, {{0, true, meta}});
    auto ok = open_by_bob(good, alice, cr::envelope_type::text);
    CHECK(ok.ok);
    CHECK(ok.rec.meta->body_size == 0);

    CHECK(open_by_bob(craft(16, {{0, true, meta}}, 2), alice, cr::envelope_type::text).error ==
          cr::open_error::bad_format);
    for (std::uint32_t size : {65535u, 32768u, 0u, 131072u, 0x00010001u}) {
      CAPTURE(size);
      auto o = open_by_bob(craft(16, {{0, true, meta}}, 1, size), alice, cr::envelope_type::text);
      CHECK(o.error == cr::open_error::bad_chunk_size);
      CHECK(o.rec.keys_calls == 0);
    }
    // A validly signed header whose ephemeral key is a low-order point.
    for (const char* low : {"0000000000000000000000000000000000000000000000000000000000000000",
                            "0100000000000000000000000000000000000000000000000000000000000000"}) {
      bytes env = craft_header(1, 16, alice, bob, array_from_hex<cr::agreement_key>(low), 65536, alice.identity);
      env.resize(env.size() + 305, 0x55);
      auto o = open_by_bob(env, alice, cr::envelope_type::text);
      CHECK(o.error == cr::open_error::bad_ephemeral_key);
      CHECK(o.rec.keys_calls == 1);
    }
    // The writer never seals to such a recipient key.
    auto req = request(alice, bob, cr::envelope_type::text, "", 0);
    req.recipient_key = cr::agreement_key{};
    CHECK_THROWS_AS(cr::envelope_writer(alice.identity, req), std::invalid_argument);
  }

  TEST_CASE("crafted chunk 0 and body chunks a correct writer never makes are refused") {
    auto name = [](std::string_view s) { return bytes(s.begin(), s.end()); };
    struct bad_case {
      const char* what;
      std::uint8_t type;
      std::vector<crafted_chunk> chunks;
      cr::open_error error;
    };
    const std::vector<bad_case> cases = {
        {"name size 256", 17, {{0, true, craft_metadata(0, 256, name("a"))}}, cr::open_error::bad_metadata},
        {"non-zero padding", 17, {{0, true, [&] { auto f = name("a"); f.resize(255, 0); f[200] = 1; return craft_metadata(0, 1, f); }()}}, cr::open_error::bad_metadata},
        {"a text with a name", 16, {{0, true, craft_metadata(0, 1, name("a"))}}, cr::open_error::bad_metadata},
        {"NUL in the name", 17, {{0, true, craft_metadata(0, 3, bytes{'a', 0, 'b'})}}, cr::open_error::bad_metadata},
        {"name not UTF-8", 17, {{0, true, craft_metadata(0, 1, bytes{0xff})}}, cr::open_error::bad_metadata},
        {"chunk 0 final but body size 2", 17, {{0, true, craft_metadata(2, 1, name("a"))}}, cr::open_error::bad_metadata},
        {"body size 0 but a body chunk follows", 17, {{0, false, craft_metadata(0, 1, name("a"))}, {1, true, name("xy")}}, cr::open_error::bad_metadata},
        {"body chunk without the last flag", 17, {{0, false, craft_metadata(2, 1, name("a"))}, {1, false, name("xy")}}, cr::open_error::bad_chunk},
        {"body chunk with index 2", 17, {{0, false, craft_metadata(2, 1, name("a"))}, {2, true, name("xy")}}, cr::open_error::bad_chunk},
        {"body split into two short chunks", 17, {{0, false, craft_metadata(2, 1, name("a"))}, {1, false, name("x")}, {2, true, name("y")}}, cr::open_error::bad_chunk},
        {"body size past the chunks given", 17, {{0, false, craft_metadata(65537, 1, name("a"))}, {1, true, bytes(65537, 1)}}, cr::open_error::bad_chunk},
    };
    for (const auto& c : cases) {
      CAPTURE(c.what);
      const bytes env = craft(c.type, c.chunks);
      const auto type = c.type == 16 ? cr::envelope_type::text : cr::envelope_type::file;
      auto o = open_by_bob(env, alice, type, false);
      CHECK(o.error == c.error);
      CHECK(o.rec.got.empty());
    }
    // The same crafting, made right, is accepted: a 2-byte file "a".
    auto o = open_by_bob(craft(17, {{0, false, craft_metadata(2, 1, name("a"))}, {1, true, name("xy")}}),
                         alice, cr::envelope_type::file);
    CHECK(o.ok);
    CHECK(o.rec.meta->name == "a");
    CHECK(std::string(o.rec.got.begin(), o.rec.got.end()) == "xy");
  }

  TEST_CASE("writer: fresh randomness per envelope, misuse and bad requests refused") {
    const bytes a = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "same");
    const bytes b = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "same");
    CHECK(bytes(a.begin() + 34, a.begin() + 66) != bytes(b.begin() + 34, b.begin() + 66));
    auto oa = open_by_bob(a, alice, cr::envelope_type::text);
    auto ob = open_by_bob(b, alice, cr::envelope_type::text);
    REQUIRE(oa.ok);
    REQUIRE(ob.ok);
    CHECK(oa.rec.meta->replay != ob.rec.meta->replay);

    cr::envelope_writer w(alice.identity, request(alice, bob, cr::envelope_type::file, "f", 10));
    cr::vector_sink sink;
    CHECK_THROWS_AS(w.seal(bytes{1}, sink), std::logic_error);
    CHECK_THROWS_AS(w.finish(sink), std::logic_error);
    CHECK(sink.bytes.empty());
    w.begin(sink);
    CHECK(sink.bytes.size() == head_size);
    CHECK_THROWS_AS(w.begin(sink), std::logic_error);
    w.seal(bytes(4, 1), sink);
    CHECK(sink.bytes.size() == head_size);  // the chunk is not complete yet
    CHECK_THROWS_AS(w.finish(sink), std::logic_error);
    CHECK(sink.bytes.size() == head_size);
    CHECK_THROWS_AS(w.seal(bytes(7, 1), sink), std::logic_error);
    w.seal(bytes(6, 1), sink);
    CHECK(sink.bytes.size() == w.content_size() - end_size);  // all chunks, no end signature yet
    w.finish(sink);
    CHECK(sink.bytes.size() == w.content_size());
    CHECK(open_by_bob(sink.bytes, alice, cr::envelope_type::file).ok);
    CHECK_THROWS_AS(w.seal(bytes{1}, sink), std::logic_error);
    CHECK_THROWS_AS(w.seal(bytes{}, sink), std::logic_error);
    CHECK_THROWS_AS(w.finish(sink), std::logic_error);  // a second end signature: never
    CHECK(sink.bytes.size() == w.content_size());

    auto text_with_name = request(alice, bob, cr::envelope_type::text, "n", 0);
    CHECK_THROWS_AS(cr::envelope_writer(alice.identity, text_with_name), std::invalid_argument);
    CHECK_THROWS_AS(cr::envelope_writer(alice.identity, request(alice, bob, cr::envelope_type::file, std::string(256, 'n'), 0)),
                    std::invalid_argument);
    CHECK_THROWS_AS(cr::envelope_writer(alice.identity, request(alice, bob, cr::envelope_type::file, std::string("a\0b", 3), 0)),
                    std::invalid_argument);
    CHECK_NOTHROW(cr::envelope_writer(alice.identity, request(alice, bob, cr::envelope_type::file, std::string(255, 'n'), 0)));
  }

  TEST_CASE("a handler that throws fails the envelope and the exception reaches the caller") {
    struct throwing final : cr::envelope_handler {
      std::optional<cr::envelope_keys> keys(const cr::envelope_header&) override {
        return cr::envelope_keys{alice.identity_key, bob.agreement};
      }
      void body(cr::bytes_view) override { throw std::runtime_error("disk full"); }
    } handler;
    const bytes env = seal(alice, bob, cr::envelope_type::file, "f", bytes(10, 1));
    cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::file, env.size()), handler);
    CHECK_THROWS_AS(reader.feed(env), std::runtime_error);
    CHECK(reader.failed());
    CHECK(reader.error() == cr::open_error::handler_failed);
    CHECK_FALSE(reader.finish());
  }

  TEST_CASE("64 MiB through writer and reader in constant memory") {
    constexpr std::uint64_t body_size = 64ull << 20;
    struct hashing final : cr::envelope_handler {
      CryptoPP::SHA256 hash;
      std::uint64_t received = 0;
      std::size_t baseline = 0, peak = 0;
      std::optional<cr::envelope_keys> keys(const cr::envelope_header&) override {
        return cr::envelope_keys{alice.identity_key, bob.agreement};
      }
      void body(cr::bytes_view piece) override {
        hash.Update(piece.data(), piece.size());
        received += piece.size();
        peak = std::max(peak, heap_in_use());
      }
    } handler;
    // The writer's output goes straight into the reader, in uneven pieces.
    struct pipe final : cr::byte_sink {
      cr::envelope_reader* reader = nullptr;
      hashing* h = nullptr;
      std::uint64_t total = 0;
      void write(cr::bytes_view b) override {
        total += b.size();
        const std::size_t a = b.size() / 3, c = b.size() / 7;
        reader->feed(b.subspan(0, a));
        reader->feed(b.subspan(a, c));
        reader->feed(b.subspan(a + c));
        h->peak = std::max(h->peak, heap_in_use());
      }
    } sink;
    bytes piece(100000);
    CryptoPP::SHA256 expected_hash;
    const std::size_t baseline = heap_in_use();
    handler.peak = baseline;
    {
      cr::envelope_writer writer(alice.identity, request(alice, bob, cr::envelope_type::file, "big.iso", body_size));
      cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::file, writer.content_size()), handler);
      sink.reader = &reader;
      sink.h = &handler;
      writer.begin(sink);
      std::uint32_t x = 12345;
      for (std::uint64_t sent = 0; sent < body_size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), body_size - sent));
        for (std::size_t i = 0; i < n; ++i) {
          x = x * 1103515245u + 12345u;
          piece[i] = static_cast<std::uint8_t>(x >> 24);
        }
        expected_hash.Update(piece.data(), n);
        writer.seal(cr::bytes_view(piece.data(), n), sink);
        sent += n;
      }
      writer.finish(sink);
      CHECK(reader.finish());
      CHECK(sink.total == cr::envelope_content_size(body_size));
    }
    CHECK(handler.received == body_size);
    std::array<std::uint8_t, 32> got{}, want{};
    handler.hash.Final(got.data());
    expected_hash.Final(want.data());
    CHECK(got == want);
    const std::size_t growth = handler.peak - baseline;
    MESSAGE("heap growth while streaming 64 MiB: " << growth << " bytes");
    // Writer and reader together hold about four 64 KiB buffers; buffering the stream would
    // show tens of MiB here.
    CHECK(growth < 1024 * 1024);
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("sizes: an envelope never exceeds SEND's u32 content size, and the formula never wraps") {
    // The largest body whose envelope fits a u32 content size (2^32 - 1 bytes).
    constexpr std::uint64_t max_body = 4293918472ull;
    CHECK(cr::envelope_max_body_size == max_body);
    CHECK(cr::envelope_content_size(max_body) == 0xffffffffull);
    CHECK(cr::envelope_content_size(max_body + 1) > 0xffffffffull);
    // Saturates instead of wrapping (a caller's "> UINT32_MAX" check must hold for any u64).
    CHECK(cr::envelope_content_size(~std::uint64_t{0}) == ~std::uint64_t{0});
    CHECK(cr::envelope_content_size(~std::uint64_t{0} - 502) == ~std::uint64_t{0});
    for (std::uint64_t huge : {~std::uint64_t{0} - (std::uint64_t{1} << 52), std::uint64_t{1} << 63,
                               std::uint64_t{1} << 56, std::uint64_t{0xffffffff}}) {
      CAPTURE(huge);
      CHECK(cr::envelope_content_size(huge) > huge);
    }
    // The writer refuses a body it could not send.
    CHECK_NOTHROW(cr::envelope_writer(alice.identity, request(alice, bob, cr::envelope_type::file, "f", max_body)));
    CHECK_THROWS_AS(cr::envelope_writer(alice.identity, request(alice, bob, cr::envelope_type::file, "f", max_body + 1)),
                    std::invalid_argument);
    // The reader, content size unknown (a stream), refuses a chunk 0 that announces more as soon
    // as it is verified, instead of reading on.
    for (std::uint64_t announced : {std::uint64_t{max_body + 1}, std::uint64_t{1} << 40, (std::uint64_t{1} << 56) - 1}) {
      CAPTURE(announced);
      const bytes env = craft(17, {{0, false, craft_metadata(announced, 1, bytes{'a'})}, {1, false, bytes(65536, 1)}});
      recorder rec = recorder_of(bob, alice);
      cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::file, std::nullopt), rec);
      CHECK_FALSE(reader.feed(env));
      CHECK(reader.error() == cr::open_error::bad_metadata);
      CHECK(rec.metadata_calls == 0);
    }
    // ... and the largest one it could have got is accepted up to there.
    {
      const bytes env = craft(17, {{0, false, craft_metadata(max_body, 1, bytes{'a'})}, {1, false, bytes(65536, 1)}});
      recorder rec = recorder_of(bob, alice);
      cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::file, std::nullopt), rec);
      CHECK(reader.feed(env));
      CHECK(rec.metadata_calls == 1);
      CHECK(rec.got.size() == 65536);
    }
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("writer: after a sink failed, every later call throws and nothing more is written") {
    struct flaky final : cr::byte_sink {
      int fail_at = 0;  // the write number (from 1) that throws
      int writes = 0;
      std::size_t bytes_written = 0;
      void write(cr::bytes_view b) override {
        if (++writes == fail_at) throw std::runtime_error("connection reset");
        bytes_written += b.size();
      }
    };
    const bytes body(65536 + 10, 7);
    // fail_at 1: the header; 2: chunk 0; 3: the first body chunk; 4: the last one; 5: the end
    // signature.
    for (int fail_at = 1; fail_at <= 5; ++fail_at) {
      CAPTURE(fail_at);
      cr::envelope_writer w(alice.identity, request(alice, bob, cr::envelope_type::file, "f", body.size()));
      flaky sink;
      sink.fail_at = fail_at;
      if (fail_at <= 2) {
        CHECK_THROWS_AS(w.begin(sink), std::runtime_error);
      } else if (fail_at <= 4) {
        w.begin(sink);
        CHECK_THROWS_AS(w.seal(body, sink), std::runtime_error);
      } else {
        w.begin(sink);
        w.seal(body, sink);
        CHECK_THROWS_AS(w.finish(sink), std::runtime_error);
      }
      const std::size_t before = sink.bytes_written;
      // A caller that carries on must not get a "finished" envelope of other bytes (before, a
      // failed begin() let seal() encrypt the body as chunk 0's index and finish() succeed).
      CHECK_THROWS_AS(w.seal(body, sink), std::logic_error);
      CHECK_THROWS_AS(w.finish(sink), std::logic_error);
      CHECK_THROWS_AS(w.begin(sink), std::logic_error);
      CHECK(sink.bytes_written == before);
      CHECK(sink.writes == fail_at);  // no write was even tried after the failed one
    }
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("reader: an expected type other than 16 or 17 is refused, even when the header agrees") {
    // A caller that casts every PULL entry's type (1-4 from a legacy sender too) must not get a
    // signed envelope of type 3 opened as a file.
    for (std::uint8_t t : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{3}, std::uint8_t{18}, std::uint8_t{255}}) {
      CAPTURE(int(t));
      const bytes env = craft(t, {{0, true, craft_metadata(0, 0, {})}});
      auto o = open_by_bob(env, alice, static_cast<cr::envelope_type>(t));
      CHECK(o.error == cr::open_error::wrong_type);
      CHECK(o.rec.keys_calls == 0);
      CHECK(o.rec.metadata_calls == 0);
    }
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("attack (docs/PROTOCOL.md §20 item 6): content the recipient seals under a sender's header is refused") {
    // The recipient (or whoever holds its agreement secret) can compute the content key of any
    // envelope sent to it, so it can seal other chunks under a header it received. Before the end
    // signature such an envelope opened as "from" the header's sender; now the sender's signature
    // over header and chunks is missing, and nobody but the sender can make it.
    const bytes real = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "the real one");
    REQUIRE(open_by_bob(real, alice, cr::envelope_type::text).ok);
    const bytes header(real.begin(), real.begin() + 134);
    const bytes alice_end(real.end() - 64, real.end());
    auto eph = array_from_hex<cr::agreement_key>(to_hex(bytes(header.begin() + 34, header.begin() + 66)));
    auto shared = cr::agree(bob.agreement, eph);
    REQUIRE(shared);
    bytes info = to_bytes("letterbox/v2/content-key");
    info.push_back(0);
    info.insert(info.end(), header.begin(), header.end());
    bytes key(32);
    CryptoPP::HKDF<CryptoPP::SHA256>().DeriveKey(key.data(), key.size(), shared->data(), shared->size(),
                                                 nullptr, 0, info.data(), info.size());
    const std::string fake = "a forged one";  // as long as the real text: the sizes all match
    bytes chunks;
    for (const auto& chunk : {craft_chunk(key, 0, false, craft_metadata(fake.size(), 0, {})),
                              craft_chunk(key, 1, true, to_bytes(fake))})
      chunks.insert(chunks.end(), chunk.begin(), chunk.end());
    auto forge = [&](const bytes& end) {
      bytes out = header;
      out.insert(out.end(), chunks.begin(), chunks.end());
      out.insert(out.end(), end.begin(), end.end());
      return out;
    };
    auto alice_lookup = [](const cr::envelope_header& h) {
      CHECK(h.sender == alice.id);
      return std::optional<cr::envelope_keys>(cr::envelope_keys{alice.identity_key, bob.agreement});
    };
    struct attempt {
      std::string what;
      bytes content;
      cr::open_error error;
    };
    const std::vector<attempt> attempts = {
        {"no end signature", forge({}), cr::open_error::truncated},  // size_mismatch with its size known
        {"alice's end signature of the real envelope", forge(alice_end), cr::open_error::bad_end_signature},
        {"bob signs it with his own identity", forge(craft_end(header, chunks, bob.identity)), cr::open_error::bad_end_signature},
        {"mallory signs it", forge(craft_end(header, chunks, mallory.identity)), cr::open_error::bad_end_signature},
        {"64 zero bytes", forge(bytes(64, 0)), cr::open_error::bad_end_signature},
        {"alice's header signature in its place", forge(bytes(header.begin() + 70, header.end())), cr::open_error::bad_end_signature},
    };
    for (const auto& a : attempts) {
      CAPTURE(a.what);
      for (bool size_known : {true, false}) {
        CAPTURE(size_known);
        auto o = open_by_bob(a.content, alice, cr::envelope_type::text, size_known);
        CHECK_FALSE(o.ok);
        if (size_known && a.content.size() != real.size()) {
          // Content size 466 is no envelope's size with a 12-byte body: refused at chunk 0.
          CHECK(o.error == cr::open_error::size_mismatch);
          CHECK(o.rec.got.empty());
          continue;
        }
        CHECK(o.error == a.error);
        // The chunks themselves verify (bob made them with the right key): what they held was
        // handed out provisionally, and finish() refuses it.
        CHECK(o.rec.metadata_calls == 1);
        CHECK(std::string(o.rec.got.begin(), o.rec.got.end()) == fake);
      }
      auto t = cr::open_text(a.content, alice.id, bob.id, alice_lookup);
      CHECK_FALSE(t.ok());
      CHECK(t.error == (a.content.size() == real.size() ? a.error : cr::open_error::size_mismatch));
      CHECK(t.text.empty());
    }
    // Control: the same forgery with an end signature made with Alice's identity secret opens, so
    // the crafting above is right and only the missing signature of Alice's stops it.
    auto signed_by_alice = open_by_bob(forge(craft_end(header, chunks, alice.identity)), alice, cr::envelope_type::text);
    CHECK(signed_by_alice.ok);
    CHECK(std::string(signed_by_alice.rec.got.begin(), signed_by_alice.rec.got.end()) == fake);
    // And carol, with her own secret, cannot even compute the key.
    CHECK_FALSE(cr::agree(carol.agreement, eph) == shared);
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("end signature: every bit of it flipped is refused") {
    const std::string text = "signed to the end";
    const bytes env = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, text);
    const bytes file_body = pattern(2 * 65536 + 5, 31);
    const bytes file = seal(alice, bob, cr::envelope_type::file, "two.bin", file_body);
    for (std::size_t i = env.size() - end_size; i < env.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        CAPTURE(i);
        CAPTURE(bit);
        bytes bad = env;
        bad[i] ^= static_cast<std::uint8_t>(1u << bit);
        auto t = cr::open_text(bad, alice.id, bob.id, [](const cr::envelope_header&) {
          return std::optional<cr::envelope_keys>(cr::envelope_keys{alice.identity_key, bob.agreement});
        });
        CHECK(t.error == cr::open_error::bad_end_signature);
        CHECK(t.text.empty());
        auto o = open_by_bob(bad, alice, cr::envelope_type::text, false, 7);
        CHECK(o.error == cr::open_error::bad_end_signature);
      }
    }
    for (std::size_t i = file.size() - end_size; i < file.size(); ++i) {
      CAPTURE(i);
      bytes bad = file;
      bad[i] ^= 0x10;
      auto o = open_by_bob(bad, alice, cr::envelope_type::file);
      CHECK(o.error == cr::open_error::bad_end_signature);
      CHECK(o.rec.got == file_body);  // handed out provisionally, never final
    }
  }

  TEST_CASE("end signature: missing or cut short is refused as truncated") {
    const bytes body = pattern(65536 + 1, 41);
    const bytes file = seal(alice, bob, cr::envelope_type::file, "f.bin", body);
    const bytes empty = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "");
    REQUIRE(empty.size() == 503);
    for (const bytes* env : {&file, &empty}) {
      const auto type = env == &empty ? cr::envelope_type::text : cr::envelope_type::file;
      const std::size_t end_at = env->size() - end_size;
      for (std::size_t cut : {end_at, end_at + 1, end_at + 32, end_at + 63}) {
        CAPTURE(env->size());
        CAPTURE(cut);
        const bytes part(env->begin(), env->begin() + static_cast<std::ptrdiff_t>(cut));
        // The entry's size unknown (a stream), or the original one: every chunk verified, the
        // end signature is not all there.
        for (std::size_t step : {all_at_once, std::size_t{1}}) {
          auto unknown = open_with(part, expect(alice, bob, type, std::nullopt), recorder_of(bob, alice), step);
          CHECK(unknown.error == cr::open_error::truncated);
          CHECK(unknown.rec.got == (type == cr::envelope_type::file ? body : bytes{}));
          CHECK(unknown.consumed == cut);
        }
        auto original = open_with(part, expect(alice, bob, type, env->size()), recorder_of(bob, alice));
        CHECK(original.error == cr::open_error::truncated);
        // The entry claims the cut size (the attacker fixed the wire's size field).
        auto claimed = open_with(part, expect(alice, bob, type, cut), recorder_of(bob, alice));
        CHECK_FALSE(claimed.ok);
        CHECK(claimed.rec.got.empty());
      }
    }
  }

  TEST_CASE("end signature: one from another envelope is refused") {
    // Same sender, recipient, type and text: only the ephemeral key and the replay ID differ.
    const bytes a = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "same text");
    const bytes b = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "same text");
    const bytes to_carol = cr::seal_text(alice.identity, alice.id, carol.id, carol.agreement_key, "same text");
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() == to_carol.size());
    const std::size_t end_at = a.size() - end_size;
    for (const bytes* other : {&b, &to_carol}) {
      const bytes swapped = splice(a, end_at, *other, end_at, end_size);
      for (bool size_known : {true, false}) {
        auto o = open_by_bob(swapped, alice, cr::envelope_type::text, size_known);
        CHECK(o.error == cr::open_error::bad_end_signature);
      }
    }
    // A file's with the same chunk count, and the end signature of a message of another sender.
    const bytes f1 = seal(alice, bob, cr::envelope_type::file, "x", pattern(70000, 1));
    const bytes f2 = seal(alice, bob, cr::envelope_type::file, "x", pattern(70000, 2));
    CHECK(open_by_bob(splice(f1, f1.size() - 64, f2, f2.size() - 64, 64), alice, cr::envelope_type::file).error ==
          cr::open_error::bad_end_signature);
    const bytes from_carol = cr::seal_text(carol.identity, carol.id, bob.id, bob.agreement_key, "same text");
    CHECK(open_by_bob(splice(a, end_at, from_carol, end_at, end_size), alice, cr::envelope_type::text).error ==
          cr::open_error::bad_end_signature);
    // Unchanged, both open.
    CHECK(open_by_bob(a, alice, cr::envelope_type::text).ok);
    CHECK(open_by_bob(b, alice, cr::envelope_type::text).ok);
  }

  TEST_CASE("end signature: nothing may follow it") {
    const bytes text = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "last word");
    const bytes empty = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "");
    for (const bytes* env : {&text, &empty}) {
      for (const bytes& extra : {bytes{0}, bytes(env->end() - 64, env->end()), bytes(100, 0x5a)}) {
        CAPTURE(env->size());
        CAPTURE(extra.size());
        bytes longer = *env;
        longer.insert(longer.end(), extra.begin(), extra.end());
        for (std::size_t step : {all_at_once, std::size_t{1}}) {
          auto o = open_by_bob(longer, alice, cr::envelope_type::text, false, step);
          CHECK(o.error == cr::open_error::trailing_data);
          CHECK(o.consumed == env->size());
        }
        CHECK_FALSE(open_by_bob(longer, alice, cr::envelope_type::text, true).ok);
        auto t = cr::open_text(longer, alice.id, bob.id, [](const cr::envelope_header&) {
          return std::optional<cr::envelope_keys>(cr::envelope_keys{alice.identity_key, bob.agreement});
        });
        CHECK_FALSE(t.ok());
        CHECK(t.text.empty());
      }
      // In a separate feed() after the end signature verified.
      recorder rec = recorder_of(bob, alice);
      cr::envelope_reader reader(expect(alice, bob, cr::envelope_type::text, std::nullopt), rec);
      CHECK(reader.feed(*env));
      CHECK(reader.feed(bytes{}));
      CHECK_FALSE(reader.feed(bytes{1}));
      CHECK(reader.error() == cr::open_error::trailing_data);
      CHECK_FALSE(reader.finish());
    }
  }
}

TEST_SUITE("crypto envelope") {
  TEST_CASE("misbinding: re-signing another's header as one's own, or forwarding it, opens nothing") {
    const bytes env = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "from alice");
    // Mallory takes Alice's envelope to Bob, writes her own ID as sender, signs the header with
    // her key and has it delivered as hers: the signature verifies, but the content key is bound
    // to the whole header (signature included), so chunk 0 does not open.
    bytes resigned = env;
    std::copy(mallory.id.begin(), mallory.id.end(), resigned.begin() + 2);
    const auto sig = cr::sign(mallory.identity, "letterbox/v2/envelope", {cr::bytes_view(resigned.data(), 70)});
    std::copy(sig.begin(), sig.end(), resigned.begin() + 70);
    auto o = open_by_bob(resigned, mallory, cr::envelope_type::text);
    CHECK(o.error == cr::open_error::bad_chunk);
    CHECK(o.rec.metadata_calls == 0);
    // Only re-signing (another signature of Mallory's would do too) with Alice's own header
    // bytes 0-69 kept fails the signature under Alice's key.
    bytes only_sig = env;
    std::copy(sig.begin(), sig.end(), only_sig.begin() + 70);
    CHECK(open_by_bob(only_sig, alice, cr::envelope_type::text).error == cr::open_error::bad_signature);
    // Bob forwards Alice's envelope to Carol (unknown key share): it names Bob.
    auto c = open_with(env, expect(alice, carol, cr::envelope_type::text, env.size()), recorder_of(carol, alice));
    CHECK(c.error == cr::open_error::wrong_recipient);
  }
}
