// Sealed envelopes (docs/PROTOCOL.md §16): golden vectors from an independent implementation
// (golden_envelope.py, python3-cryptography), round trips at the chunk edges with any feeding
// pattern, every kind of tampering (each byte flipped, truncation, reordering, splicing,
// extension, wrong keys, wrong signer, wrong type, chunk size, low-order ephemeral key,
// malformed metadata crafted with the raw primitives), the size formula, and constant memory.
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
  writer.finish();
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
  bytes h{format, type};
  h.insert(h.end(), from.id.begin(), from.id.end());
  h.insert(h.end(), to.id.begin(), to.id.end());
  h.insert(h.end(), ephemeral.begin(), ephemeral.end());
  for (int i = 0; i < 4; ++i) h.push_back(static_cast<std::uint8_t>(chunk_size >> (8 * i)));
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

struct crafted_chunk {
  std::uint64_t index;
  bool last;
  bytes plain;
};

// alice -> bob, header of the given fields, chunks as given (index, last flag, plaintext).
bytes craft(std::uint8_t type, const std::vector<crafted_chunk>& chunks, std::uint8_t format = 1,
            std::uint32_t chunk_size = 65536) {
  const auto eph = array_from_hex<cr::agreement_secret>(
      "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  bytes out = craft_header(format, type, alice, bob, cr::agreement_public_of(eph), chunk_size,
                           alice.identity);
  const bytes key = craft_key(out, eph, bob.agreement_key);
  for (const auto& c : chunks) {
    auto sealed = craft_chunk(key, c.index, c.last, c.plain);
    out.insert(out.end(), sealed.begin(), sealed.end());
  }
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
    "2173b6642fd7c0bce26dcc20712b61542d1796a56f5bc39d247c";

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
    CHECK(env.size() == 466);
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
    CHECK(file_env.size() == 66010);
    std::array<std::uint8_t, 32> digest{};
    CryptoPP::SHA256().CalculateDigest(digest.data(), file_env.data(), file_env.size());
    CHECK(to_hex(digest) == "182fa68cce3bd764f244b6beeca2edd45e1324f6a2fd627bcdc741c74d6fcdcc");
  }

  TEST_CASE("the exact size formula: 134 + 305 + body + 16 n, and the bytes produced") {
    CHECK(cr::envelope_content_size(0) == 439);
    CHECK(cr::envelope_content_size(1) == 456);
    CHECK(cr::envelope_content_size(65536) == 439 + 65536 + 16);
    CHECK(cr::envelope_content_size(65537) == 439 + 65537 + 32);
    CHECK(cr::envelope_body_chunks(0) == 0);
    CHECK(cr::envelope_body_chunks(65536) == 1);
    CHECK(cr::envelope_body_chunks(65537) == 2);
    for (std::uint64_t n : {0ull, 1ull, 2ull, 65535ull, 65536ull, 65537ull, 131072ull, 131073ull, 1000000ull}) {
      const std::uint64_t chunks = (n + 65535) / 65536;
      const std::uint64_t formula = 134 + 305 + n + 16 * chunks;
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

  TEST_CASE("flipping any single byte of a small envelope fails, and nothing of the body is shown") {
    const bytes body = pattern(100, 3);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "notes.txt", body);
    REQUIRE(env.size() == 439 + 100 + 16);
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
          CHECK(o.rec.got.empty());
          if (i < head_size) CHECK(o.rec.metadata_calls == 0);
          failures += o.ok ? 0 : 1;
        }
      }
    }
    CHECK(failures == static_cast<int>(env.size()) * 4);
  }

  TEST_CASE("truncation at every chunk boundary and inside chunks fails") {
    const bytes body = pattern(3 * 65536 + 100, 11);
    const bytes env = seal(alice, bob, cr::envelope_type::file, "big.bin", body);
    REQUIRE(env.size() == 439 + body.size() + 4 * 16);
    std::vector<std::size_t> cuts = {0, 1, 70, 133, 134, 135, 300, 438, 439, 440, env.size() - 16,
                                     env.size() - 1};
    for (std::size_t k = 1; k <= 3; ++k) {
      const std::size_t boundary = head_size + k * full_chunk;
      for (std::size_t c : {boundary - 1, boundary, boundary + 1, boundary + 30000})
        if (c < env.size()) cuts.push_back(c);
      cuts.push_back(head_size + (k - 1) * full_chunk + 1);
    }
    for (std::size_t cut : cuts) {
      REQUIRE(cut < env.size());
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
    // Cut after chunk 0 of a non-empty body, size unknown: chunk 0 is then taken as the final
    // chunk, and its tag (made with last = 0) refuses that.
    auto o0 = open_with(bytes(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(head_size)),
                        expect(alice, bob, cr::envelope_type::file, std::nullopt), recorder_of(bob, alice));
    CHECK(o0.error == cr::open_error::bad_chunk);
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
    // Its final chunk in place of ours (the same length).
    const std::size_t last = head_size + 3 * full_chunk;
    o = open_by_bob(splice(env, last, other, last, env.size() - last), alice, cr::envelope_type::file);
    CHECK(o.error == cr::open_error::bad_chunk);
  }

  TEST_CASE("appending bytes fails") {
    const bytes env = seal(alice, bob, cr::envelope_type::file, "a", pattern(5000, 5));
    for (const bytes& extra : {bytes{0}, bytes{0x42, 0x43}, bytes(env.end() - 5016, env.end())}) {
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
    // An empty text plus one byte: chunk 0 is then not the final chunk, which its tag refuses.
    bytes text = cr::seal_text(alice.identity, alice.id, bob.id, bob.agreement_key, "");
    text.push_back(0);
    CHECK(open_by_bob(text, alice, cr::envelope_type::text, false).error == cr::open_error::bad_chunk);
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
    CHECK_THROWS_AS(w.finish(), std::logic_error);
    w.begin(sink);
    CHECK(sink.bytes.size() == head_size);
    CHECK_THROWS_AS(w.begin(sink), std::logic_error);
    w.seal(bytes(4, 1), sink);
    CHECK(sink.bytes.size() == head_size);  // the chunk is not complete yet
    CHECK_THROWS_AS(w.finish(), std::logic_error);
    CHECK_THROWS_AS(w.seal(bytes(7, 1), sink), std::logic_error);
    w.seal(bytes(6, 1), sink);
    CHECK(sink.bytes.size() == w.content_size());
    w.finish();
    CHECK_THROWS_AS(w.seal(bytes{1}, sink), std::logic_error);

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
      writer.finish();
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
