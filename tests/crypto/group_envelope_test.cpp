// Group envelopes (docs/PROTOCOL.md §16a): the byte layout checked with the raw primitives,
// round trips for 1, 2 and 100 members, who can open (members) and who cannot (a non-member, a
// member removed before the send), "not addressed to you", every single-byte flip, a member
// forging as another sender, truncation, reordering, the size formula and constant memory.
#include <cryptopp/chachapoly.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/sha.h>
#include <doctest/doctest.h>
#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "agreement.hpp"
#include "group_envelope.hpp"
#include "identity.hpp"

using namespace letterbox;
namespace cr = letterbox::crypto;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t all_at_once = std::numeric_limits<std::size_t>::max();

struct party {
  cr::identity_secret identity{};
  cr::identity_key identity_key{};
  cr::client_id id{};
  cr::agreement_secret agreement{};
  cr::agreement_key agreement_key{};
};

party make_party(std::uint32_t seed) {
  party p;
  for (std::size_t i = 0; i < p.identity.size(); ++i) {
    p.identity[i] = static_cast<std::uint8_t>(seed * 31 + i * 7 + (seed >> 8));
    p.agreement[i] = static_cast<std::uint8_t>(seed * 17 + i * 13 + 1 + (seed >> 8) * 3);
  }
  p.identity_key = cr::public_key_of(p.identity);
  p.id = cr::derive_client_id(p.identity_key);
  p.agreement_key = cr::agreement_public_of(p.agreement);
  return p;
}

const party alice = make_party(1);
const party bob = make_party(2);
const party carol = make_party(3);
const party mallory = make_party(4);  // never a member
const party dave = make_party(5);     // kicked: no longer in the member list

const cr::group_id group_a = {0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
const cr::group_id group_b = {0x47, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

std::vector<cr::group_recipient> recipients(std::initializer_list<const party*> members) {
  std::vector<cr::group_recipient> out;
  for (const party* p : members) out.push_back({p->id, p->agreement_key});
  return out;
}

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

cr::group_seal_request request(const party& sender, const std::vector<cr::group_recipient>& members,
                               cr::group_envelope_type type, std::string name, std::uint64_t body_size) {
  cr::group_seal_request r;
  r.sender = sender.id;
  r.group = group_a;
  r.members = members;
  r.type = type;
  r.name = std::move(name);
  r.body_size = body_size;
  r.sent_at_ms = 1764590400000ull;
  return r;
}

bytes seal(const party& sender, const std::vector<cr::group_recipient>& members,
           cr::group_envelope_type type, std::string name, const bytes& body,
           std::size_t piece = all_at_once, const cr::group_seal_randomness* fixed = nullptr) {
  auto r = request(sender, members, type, std::move(name), body.size());
  auto writer = fixed ? cr::group_envelope_writer(sender.identity, r, *fixed)
                      : cr::group_envelope_writer(sender.identity, r);
  cr::vector_sink sink;
  writer.begin(sink);
  for (std::size_t off = 0; off < body.size();) {
    const std::size_t n = std::min(piece, body.size() - off);
    writer.seal(cr::bytes_view(body.data() + off, n), sink);
    off += n;
  }
  writer.finish(sink);
  REQUIRE(sink.bytes.size() == writer.content_size());
  return std::move(sink.bytes);
}

// Records what the reader hands out; knows every party's identity key.
struct recorder final : cr::group_envelope_handler {
  cr::agreement_secret own{};
  std::vector<const party*> known{&alice, &bob, &carol, &mallory, &dave};
  bytes got;
  std::optional<cr::envelope_metadata> meta;
  int keys_calls = 0;
  explicit recorder(const party& self) : own(self.agreement) {}
  std::optional<cr::envelope_keys> keys(const cr::group_envelope_header& h) override {
    ++keys_calls;
    for (const party* p : known)
      if (p->id == h.sender) return cr::envelope_keys{p->identity_key, own};
    return std::nullopt;
  }
  void metadata(const cr::envelope_metadata& m) override { meta = m; }
  void body(cr::bytes_view piece) override { got.insert(got.end(), piece.begin(), piece.end()); }
};

struct outcome {
  bool ok = false;
  cr::group_open_error error = cr::group_open_error::none;
  bytes body;
  std::optional<cr::envelope_metadata> meta;
};

outcome open(const bytes& content, const party& self, const party& claimed_sender,
             cr::group_envelope_type type, std::size_t piece = all_at_once,
             bool with_size = true, std::optional<cr::group_id> group = std::nullopt) {
  recorder handler(self);
  cr::group_envelope_expectations e;
  e.type = type;
  e.sender = claimed_sender.id;
  e.self = self.id;
  e.group = group;
  if (with_size) e.content_size = content.size();
  cr::group_envelope_reader reader(e, handler);
  for (std::size_t off = 0; off < content.size();) {
    const std::size_t n = std::min(piece, content.size() - off);
    if (!reader.feed(cr::bytes_view(content.data() + off, n))) break;
    off += n;
  }
  outcome o;
  o.ok = reader.finish();
  o.error = reader.error();
  o.body = std::move(handler.got);
  o.meta = handler.meta;
  return o;
}

std::size_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

using T = cr::group_envelope_type;

}  // namespace

TEST_SUITE("crypto group envelope") {
  TEST_CASE("layout of §16a, byte for byte, opened with the raw primitives") {
    cr::group_seal_randomness fixed;
    for (std::size_t i = 0; i < 32; ++i) {
      fixed.ephemeral_secret[i] = static_cast<std::uint8_t>(0xa0 + i);
      fixed.content_key[i] = static_cast<std::uint8_t>(0x40 + i);
    }
    for (std::size_t i = 0; i < 16; ++i) fixed.replay[i] = static_cast<std::uint8_t>(i);
    const bytes body = {'h', 'i'};
    const auto members = recipients({&bob, &carol});
    const bytes c = seal(alice, members, T::text, "", body, all_at_once, &fixed);
    REQUIRE(c.size() == 72 + 2 * 64 + 64 + 305 + 2 + 16 + 64);
    CHECK(c[0] == 1);
    CHECK(c[1] == 18);
    CHECK(std::equal(alice.id.begin(), alice.id.end(), c.begin() + 2));
    CHECK(std::equal(group_a.begin(), group_a.end(), c.begin() + 18));
    const auto eph = cr::agreement_public_of(fixed.ephemeral_secret);
    CHECK(std::equal(eph.begin(), eph.end(), c.begin() + 34));
    CHECK(c[66] == 0x00);
    CHECK(c[67] == 0x00);
    CHECK(c[68] == 0x01);
    CHECK(c[69] == 0x00);
    CHECK(c[70] == 2);
    CHECK(c[71] == 0);
    CHECK(std::equal(bob.id.begin(), bob.id.end(), c.begin() + 72));
    CHECK(std::equal(carol.id.begin(), carol.id.end(), c.begin() + 136));
    const std::size_t hsize = 72 + 128 + 64;
    cr::signature sig{};
    std::copy_n(c.begin() + 200, 64, sig.begin());
    CHECK(cr::verify(alice.identity_key, "letterbox/v2/group-envelope", {cr::bytes_view(c.data(), 200)}, sig));
    CHECK_FALSE(cr::verify(alice.identity_key, "letterbox/v2/envelope", {cr::bytes_view(c.data(), 200)}, sig));

    // Each member's wrapped key opens with its own wrap key, to the fixed content key.
    for (const party* p : {&bob, &carol}) {
      const std::size_t at = p == &bob ? 72 : 136;
      const auto shared = cr::agree(p->agreement, eph);
      REQUIRE(shared);
      bytes info;
      const std::string label = "letterbox/v2/group-wrap";
      info.insert(info.end(), label.begin(), label.end());
      info.push_back(0);
      info.insert(info.end(), c.begin(), c.begin() + 72);
      info.insert(info.end(), p->id.begin(), p->id.end());
      std::array<std::uint8_t, 32> wk{};
      CryptoPP::HKDF<CryptoPP::SHA256>().DeriveKey(wk.data(), 32, shared->data(), 32, nullptr, 0, info.data(), info.size());
      std::array<std::uint8_t, 12> zero{};
      std::array<std::uint8_t, 32> ck{};
      CryptoPP::ChaCha20Poly1305::Decryption d;
      d.SetKeyWithIV(wk.data(), 32, zero.data(), 12);
      REQUIRE(d.DecryptAndVerify(ck.data(), c.data() + at + 16 + 32, 16, zero.data(), 12, nullptr, 0,
                                 c.data() + at + 16, 32));
      CHECK(ck == fixed.content_key);
    }
    // chunk key = HKDF(content key, "letterbox/v2/group-content-key" || 0 || header); chunk 0
    // (nonce 0, last 0: the body is not empty), then chunk 1 (nonce 1, last 1).
    bytes info;
    const std::string label = "letterbox/v2/group-content-key";
    info.insert(info.end(), label.begin(), label.end());
    info.push_back(0);
    info.insert(info.end(), c.begin(), c.begin() + hsize);
    std::array<std::uint8_t, 32> key{};
    CryptoPP::HKDF<CryptoPP::SHA256>().DeriveKey(key.data(), 32, fixed.content_key.data(), 32, nullptr, 0,
                                                 info.data(), info.size());
    std::array<std::uint8_t, 12> n0{}, n1{};
    n1[7] = 1;
    n1[11] = 1;
    CryptoPP::ChaCha20Poly1305::Decryption d;
    d.SetKeyWithIV(key.data(), 32, n0.data(), 12);
    bytes meta(289);
    REQUIRE(d.DecryptAndVerify(meta.data(), c.data() + hsize + 289, 16, n0.data(), 12, nullptr, 0,
                               c.data() + hsize, 289));
    CHECK(std::equal(fixed.replay.begin(), fixed.replay.end(), meta.begin()));
    CHECK(meta[24] == 2);  // body size, u64 LE
    bytes text(2);
    REQUIRE(d.DecryptAndVerify(text.data(), c.data() + hsize + 305 + 2, 16, n1.data(), 12, nullptr, 0,
                               c.data() + hsize + 305, 2));
    CHECK(text == body);
    // End signature over header || SHA-512(chunk 0 || chunk 1).
    std::array<std::uint8_t, 64> digest{};
    CryptoPP::SHA512().CalculateDigest(digest.data(), c.data() + hsize, 305 + 18);
    cr::signature end{};
    std::copy_n(c.end() - 64, 64, end.begin());
    CHECK(cr::verify(alice.identity_key, "letterbox/v2/group-envelope-end",
                     {cr::bytes_view(c.data(), hsize), cr::bytes_view(digest)}, end));
    // Deterministic: the same randomness gives the same bytes.
    CHECK(seal(alice, members, T::text, "", body, all_at_once, &fixed) == c);
    // ... and they are those of an independent implementation of §16a (python3-cryptography,
    // tests/crypto/golden_group_envelope.py): 651 bytes with this SHA-256.
    std::array<std::uint8_t, 32> hash{};
    CryptoPP::SHA256().CalculateDigest(hash.data(), c.data(), c.size());
    std::string hex;
    for (auto b : hash) {
      static const char* digits = "0123456789abcdef";
      hex += digits[b >> 4];
      hex += digits[b & 15];
    }
    CHECK(c.size() == 651);
    CHECK(hex == "c89a5b61c71bc3e267f1e489d994883f2cff353962920824adacb413cf5c0474");
  }

  TEST_CASE("round trip for 1, 2 and 100 members: every member opens, with any feeding") {
    for (std::size_t m : {1u, 2u, 100u}) {
      std::vector<party> parties;
      for (std::size_t i = 0; i < m; ++i) parties.push_back(make_party(static_cast<std::uint32_t>(100 + i)));
      std::vector<cr::group_recipient> members;
      for (const auto& p : parties) members.push_back({p.id, p.agreement_key});
      const bytes body = pattern(65536 + 77, static_cast<std::uint32_t>(m));
      const bytes c = seal(alice, members, T::file, "f.bin", body, 1000);
      CHECK(c.size() == cr::group_envelope_content_size(m, body.size()));
      for (std::size_t i = 0; i < m; i += (m > 10 ? 9 : 1)) {
        const party& p = parties[i];
        const auto o = open(c, p, alice, T::file, i % 2 ? 333 : all_at_once, i % 3 != 0);
        REQUIRE_MESSAGE(o.ok, "member " << i << " of " << m << ": " << cr::to_string(o.error));
        CHECK(o.body == body);
        CHECK(o.meta->name == "f.bin");
      }
      const auto last = open(c, parties.back(), alice, T::file, 1);
      CHECK(last.ok);
    }
  }

  TEST_CASE("texts: empty and not, seal_group_text and open_group_text, group checked") {
    const auto members = recipients({&alice, &bob});
    for (std::string text : {std::string(), std::string("hello group \xc3\xa9")}) {
      const auto c = cr::seal_group_text(alice.identity, alice.id, group_a, members, text);
      CHECK(c.size() == cr::group_envelope_content_size(2, text.size()));
      const auto lookup = [](const cr::group_envelope_header& h) -> std::optional<cr::envelope_keys> {
        if (h.sender == alice.id) return cr::envelope_keys{alice.identity_key, bob.agreement};
        return std::nullopt;
      };
      const auto o = cr::open_group_text(c, alice.id, bob.id, lookup);
      REQUIRE(o.ok());
      CHECK(o.text == text);
      CHECK(o.group == group_a);
      // The sender, a member too, reads its own message.
      CHECK(open(bytes(c.begin(), c.end()), alice, alice, T::text).ok);
      CHECK(open(bytes(c.begin(), c.end()), bob, alice, T::text, all_at_once, true, group_a).ok);
      CHECK(open(bytes(c.begin(), c.end()), bob, alice, T::text, all_at_once, true, group_b).error ==
            cr::group_open_error::wrong_group);
    }
    CHECK_THROWS_AS(cr::seal_group_text(alice.identity, alice.id, group_a, members, std::string("a\0b", 3)),
                    std::invalid_argument);
  }

  TEST_CASE("a non-member and a kicked member (no longer listed) cannot open: not addressed to you") {
    // Before the kick dave was a member and read; after it he is not in the list.
    const bytes before = seal(alice, recipients({&bob, &carol, &dave}), T::text, "", {'o', 'l', 'd'});
    CHECK(open(before, dave, alice, T::text).ok);
    const bytes after = seal(alice, recipients({&bob, &carol}), T::text, "", {'n', 'e', 'w'});
    for (const party* outsider : {&dave, &mallory}) {
      recorder handler(*outsider);
      cr::group_envelope_expectations e;
      e.type = T::text;
      e.sender = alice.id;
      e.self = outsider->id;
      e.content_size = after.size();
      cr::group_envelope_reader reader(e, handler);
      CHECK_FALSE(reader.feed(after));
      CHECK_FALSE(reader.finish());
      CHECK(reader.error() == cr::group_open_error::not_addressed);
      CHECK(cr::to_string(reader.error()) == "not addressed to you");
      CHECK(handler.keys_calls == 0);
      CHECK(handler.got.empty());
    }
    // Even pretending to be a listed member (its ID as "self") with its own agreement secret,
    // the wrapped key is not for that secret: nothing opens.
    recorder handler(dave);
    cr::group_envelope_expectations e;
    e.type = T::text;
    e.sender = alice.id;
    e.self = bob.id;
    e.content_size = after.size();
    cr::group_envelope_reader reader(e, handler);
    reader.feed(after);
    CHECK_FALSE(reader.finish());
    CHECK(reader.error() == cr::group_open_error::bad_wrapped_key);
    CHECK(handler.got.empty());
    // And another member's wrapped entry copied in place of one's own fails (it is signed).
    bytes spliced = after;
    std::copy_n(spliced.begin() + 72 + 16, 48, spliced.begin() + 136 + 16);
    CHECK(open(spliced, carol, alice, T::text).error == cr::group_open_error::bad_signature);
  }

  TEST_CASE("every single-byte flip is refused, and nothing of the body is handed out before the end") {
    const bytes body = pattern(300, 7);
    const bytes c = seal(alice, recipients({&bob, &carol}), T::file, "x", body);
    for (std::size_t i = 0; i < c.size(); ++i) {
      bytes t = c;
      t[i] ^= 0x01;
      const auto o = open(t, bob, alice, T::file);
      REQUIRE_MESSAGE(!o.ok, "flip at " << i);
      // carol's wrapped key is signed: a flip there fails bob too. Before the end signature
      // nothing of the (single-chunk) body is handed out.
      if (i < c.size() - 64) CHECK(o.body.empty());
    }
  }

  TEST_CASE("a member cannot forge as another sender: re-sealed content under alice's header fails") {
    // bob is a member: he knows the content key of alice's message. He seals other chunks under
    // alice's header (same content key) and keeps alice's end signature, or signs it himself.
    const bytes c = seal(alice, recipients({&bob, &carol}), T::text, "", {'p', 'a', 'y', ' ', '1'});
    const std::size_t hsize = cr::group_header_size(2);
    // Recover the content key as bob, with the raw primitives.
    const auto hdr = cr::parse_group_envelope_header(c);
    REQUIRE(hdr);
    const auto shared = cr::agree(bob.agreement, hdr->ephemeral);
    bytes info;
    for (char ch : std::string("letterbox/v2/group-wrap")) info.push_back(static_cast<std::uint8_t>(ch));
    info.push_back(0);
    info.insert(info.end(), c.begin(), c.begin() + 72);
    info.insert(info.end(), bob.id.begin(), bob.id.end());
    std::array<std::uint8_t, 32> wk{}, ck{}, key{};
    CryptoPP::HKDF<CryptoPP::SHA256>().DeriveKey(wk.data(), 32, shared->data(), 32, nullptr, 0, info.data(), info.size());
    std::array<std::uint8_t, 12> zero{};
    CryptoPP::ChaCha20Poly1305::Decryption d;
    d.SetKeyWithIV(wk.data(), 32, zero.data(), 12);
    REQUIRE(d.DecryptAndVerify(ck.data(), c.data() + 72 + 16 + 32, 16, zero.data(), 12, nullptr, 0, c.data() + 72 + 16, 32));
    info.clear();
    for (char ch : std::string("letterbox/v2/group-content-key")) info.push_back(static_cast<std::uint8_t>(ch));
    info.push_back(0);
    info.insert(info.end(), c.begin(), c.begin() + hsize);
    CryptoPP::HKDF<CryptoPP::SHA256>().DeriveKey(key.data(), 32, ck.data(), 32, nullptr, 0, info.data(), info.size());
    // New chunks: metadata of the original, body "pay 9".
    CryptoPP::ChaCha20Poly1305::Decryption md;
    std::array<std::uint8_t, 12> n0{}, n1{};
    n1[7] = 1;
    n1[11] = 1;
    md.SetKeyWithIV(key.data(), 32, n0.data(), 12);
    bytes meta(289);
    REQUIRE(md.DecryptAndVerify(meta.data(), c.data() + hsize + 289, 16, n0.data(), 12, nullptr, 0, c.data() + hsize, 289));
    CryptoPP::ChaCha20Poly1305::Encryption enc;
    enc.SetKeyWithIV(key.data(), 32, n0.data(), 12);
    bytes forged(c.begin(), c.begin() + hsize);
    bytes chunk(305);
    enc.EncryptAndAuthenticate(chunk.data(), chunk.data() + 289, 16, n0.data(), 12, nullptr, 0, meta.data(), 289);
    forged.insert(forged.end(), chunk.begin(), chunk.end());
    const bytes evil = {'p', 'a', 'y', ' ', '9'};
    chunk.assign(5 + 16, 0);
    enc.EncryptAndAuthenticate(chunk.data(), chunk.data() + 5, 16, n1.data(), 12, nullptr, 0, evil.data(), 5);
    forged.insert(forged.end(), chunk.begin(), chunk.end());
    // (a) alice's end signature kept; (b) bob's own signature as the end signature.
    bytes with_alice_end = forged;
    with_alice_end.insert(with_alice_end.end(), c.end() - 64, c.end());
    std::array<std::uint8_t, 64> digest{};
    CryptoPP::SHA512().CalculateDigest(digest.data(), forged.data() + hsize, forged.size() - hsize);
    const auto bob_end = cr::sign(bob.identity, "letterbox/v2/group-envelope-end",
                                  {cr::bytes_view(forged.data(), hsize), cr::bytes_view(digest)});
    bytes with_bob_end = forged;
    with_bob_end.insert(with_bob_end.end(), bob_end.begin(), bob_end.end());
    for (const bytes* f : {&with_alice_end, &with_bob_end}) {
      const auto o = open(*f, carol, alice, T::text);
      CHECK_FALSE(o.ok);
      CHECK(o.error == cr::group_open_error::bad_end_signature);
    }
    // Nor can bob claim alice's message is his: the header names alice and is signed by her.
    CHECK(open(c, carol, bob, T::text).error == cr::group_open_error::wrong_sender);
    // A whole envelope bob makes in his own name with alice's ID in the sender field fails.
    auto r = request(alice, recipients({&bob, &carol}), T::text, "", 0);
    cr::group_envelope_writer w(bob.identity, r);
    cr::vector_sink sink;
    w.begin(sink);
    w.finish(sink);
    CHECK(open(sink.bytes, carol, alice, T::text).error == cr::group_open_error::bad_signature);
  }

  TEST_CASE("truncation, reordering, duplication and extension are refused") {
    const bytes body = pattern(3 * 65536 + 5, 9);
    const bytes c = seal(alice, recipients({&bob}), T::file, "big", body);
    const std::size_t h = cr::group_header_size(1) + 305;
    const std::size_t full = 65536 + 16;
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{71}, std::size_t{72},
                            cr::group_header_size(1) - 1, cr::group_header_size(1), h, h + full,
                            h + 3 * full, c.size() - 64, c.size() - 1}) {
      bytes t(c.begin(), c.begin() + cut);
      CHECK_FALSE(open(t, bob, alice, T::file, all_at_once, false).ok);
      CHECK_FALSE(open(t, bob, alice, T::file).ok);
    }
    bytes swapped = c;  // chunks 1 and 2 swapped
    std::swap_ranges(swapped.begin() + h, swapped.begin() + h + full, swapped.begin() + h + full);
    CHECK(open(swapped, bob, alice, T::file).error == cr::group_open_error::bad_chunk);
    bytes dup = c;  // chunk 1 twice, chunk 2 dropped
    std::copy_n(c.begin() + h, full, dup.begin() + h + full);
    CHECK(open(dup, bob, alice, T::file).error == cr::group_open_error::bad_chunk);
    bytes longer = c;
    longer.push_back(0);
    CHECK_FALSE(open(longer, bob, alice, T::file).ok);
    CHECK(open(longer, bob, alice, T::file, all_at_once, false).error == cr::group_open_error::trailing_data);
    // A chunk from another group envelope (other key) spliced in.
    const bytes other = seal(alice, recipients({&bob}), T::file, "big", body);
    bytes spliced = c;
    std::copy_n(other.begin() + h, full, spliced.begin() + h);
    CHECK(open(spliced, bob, alice, T::file).error == cr::group_open_error::bad_chunk);
  }

  TEST_CASE("header checks: type, format, member list, chunk size, misuse of the writer") {
    const bytes c = seal(alice, recipients({&bob}), T::text, "", {'x'});
    CHECK(open(c, bob, alice, T::file).error == cr::group_open_error::wrong_type);
    bytes t = c;
    t[0] = 2;
    CHECK(open(t, bob, alice, T::text).error == cr::group_open_error::bad_format);
    t = c;
    t[70] = 0;  // member count 0
    CHECK(open(t, bob, alice, T::text, all_at_once, false).error == cr::group_open_error::bad_member_list);
    t[70] = 0x01;
    t[71] = 0x04;  // 1025
    CHECK(open(t, bob, alice, T::text, all_at_once, false).error == cr::group_open_error::bad_member_list);
    t = c;
    t[68] = 2;
    CHECK(open(t, bob, alice, T::text).error == cr::group_open_error::bad_chunk_size);
    // unknown sender key
    recorder handler(bob);
    handler.known.clear();
    cr::group_envelope_expectations e;
    e.type = T::text;
    e.sender = alice.id;
    e.self = bob.id;
    cr::group_envelope_reader reader(e, handler);
    reader.feed(c);
    CHECK(reader.error() == cr::group_open_error::unknown_sender);

    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, request(alice, {}, T::text, "", 0)),
                    std::invalid_argument);
    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, request(alice, recipients({&bob, &bob}), T::text, "", 0)),
                    std::invalid_argument);
    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, request(alice, recipients({&bob}), T::text, "n", 0)),
                    std::invalid_argument);
    auto low = recipients({&bob});
    low[0].key = {};
    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, request(alice, low, T::text, "", 0)),
                    std::invalid_argument);
    std::vector<cr::group_recipient> too_many(1025, cr::group_recipient{bob.id, bob.agreement_key});
    for (std::size_t i = 0; i < too_many.size(); ++i) {
      too_many[i].member[0] = static_cast<std::uint8_t>(i);
      too_many[i].member[1] = static_cast<std::uint8_t>(i >> 8);
    }
    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, request(alice, too_many, T::text, "", 0)),
                    std::invalid_argument);
    cr::group_envelope_writer w(alice.identity, request(alice, recipients({&bob}), T::text, "", 3));
    cr::vector_sink sink;
    CHECK_THROWS_AS(w.seal(cr::bytes_view(c.data(), 1), sink), std::logic_error);
    w.begin(sink);
    CHECK_THROWS_AS(w.seal(cr::bytes_view(c.data(), 4), sink), std::logic_error);
    CHECK_THROWS_AS(w.finish(sink), std::logic_error);
  }

  TEST_CASE("size formula: 136 + 64 m + 305 + body + 16 n + 64, exactly, and the u32 limit") {
    CHECK(cr::group_header_size(1) == 200);
    CHECK(cr::group_envelope_content_size(1, 0) == 569);
    CHECK(cr::group_envelope_content_size(2, 1) == 136 + 128 + 305 + 1 + 16 + 64);
    CHECK(cr::group_envelope_content_size(100, 65536) == 136 + 6400 + 305 + 65536 + 16 + 64);
    CHECK(cr::group_envelope_content_size(100, 65537) == 136 + 6400 + 305 + 65537 + 32 + 64);
    for (std::size_t m : {1u, 2u, 100u, 1024u}) {
      const auto max = cr::group_envelope_max_body_size(m);
      CHECK(cr::group_envelope_content_size(m, max) <= 0xffffffffull);
      CHECK(cr::group_envelope_content_size(m, max + 1) > 0xffffffffull);
    }
    CHECK(cr::group_envelope_content_size(1, ~std::uint64_t{0}) == ~std::uint64_t{0});
    for (std::size_t body : {0u, 1u, 65535u, 65536u, 65537u, 131072u}) {
      const bytes c = seal(alice, recipients({&bob, &carol, &dave}), T::file, "s", pattern(body, 3), 4096);
      CHECK(c.size() == cr::group_envelope_content_size(3, body));
      CHECK(open(c, dave, alice, T::file, 5000, false).ok);
    }
    auto r = request(alice, recipients({&bob}), T::file, "x", cr::group_envelope_max_body_size(1) + 1);
    CHECK_THROWS_AS(cr::group_envelope_writer(alice.identity, r), std::invalid_argument);
  }

  TEST_CASE("64 MiB to 100 members through writer and reader in constant memory") {
    constexpr std::uint64_t body_size = 64ull << 20;
    std::vector<party> parties;
    for (std::size_t i = 0; i < 100; ++i) parties.push_back(make_party(static_cast<std::uint32_t>(300 + i)));
    std::vector<cr::group_recipient> members;
    for (const auto& p : parties) members.push_back({p.id, p.agreement_key});
    struct hashing final : cr::group_envelope_handler {
      CryptoPP::SHA256 hash;
      std::uint64_t received = 0;
      std::size_t peak = 0;
      cr::agreement_secret own{};
      std::optional<cr::envelope_keys> keys(const cr::group_envelope_header&) override {
        return cr::envelope_keys{alice.identity_key, own};
      }
      void body(cr::bytes_view piece) override {
        hash.Update(piece.data(), piece.size());
        received += piece.size();
        peak = std::max(peak, heap_in_use());
      }
    } handler;
    handler.own = parties[57].agreement;
    struct pipe final : cr::byte_sink {
      cr::group_envelope_reader* reader = nullptr;
      hashing* h = nullptr;
      std::uint64_t total = 0;
      void write(cr::bytes_view b) override {
        total += b.size();
        const std::size_t a = b.size() / 3;
        reader->feed(b.subspan(0, a));
        reader->feed(b.subspan(a));
        h->peak = std::max(h->peak, heap_in_use());
      }
    } sink;
    bytes piece(100000);
    CryptoPP::SHA256 expected_hash;
    const std::size_t baseline = heap_in_use();
    handler.peak = baseline;
    {
      auto r = request(alice, members, T::file, "big.iso", body_size);
      cr::group_envelope_writer writer(alice.identity, r);
      cr::group_envelope_expectations e;
      e.type = T::file;
      e.sender = alice.id;
      e.self = parties[57].id;
      e.content_size = writer.content_size();
      cr::group_envelope_reader reader(e, handler);
      sink.reader = &reader;
      sink.h = &handler;
      writer.begin(sink);
      std::uint32_t x = 999;
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
      CHECK(sink.total == cr::group_envelope_content_size(100, body_size));
    }
    CHECK(handler.received == body_size);
    std::array<std::uint8_t, 32> got{}, want{};
    handler.hash.Final(got.data());
    expected_hash.Final(want.data());
    CHECK(got == want);
    const std::size_t growth = handler.peak - baseline;
    MESSAGE("heap growth while streaming 64 MiB to 100 members: " << growth << " bytes");
    CHECK(growth < 1024 * 1024);
  }
}
