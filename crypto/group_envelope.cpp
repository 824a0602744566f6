#include "group_envelope.hpp"

#include <cryptopp/chachapoly.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/misc.h>
#include <cryptopp/osrng.h>
#include <cryptopp/secblock.h>
#include <cryptopp/sha.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "stream_support.hpp"

// The STREAM part (chunk nonces, chunk 0's layout, the UTF-8 check) is that of envelope.cpp;
// the helpers both use are in stream_support.hpp (internal to crypto/, so envelope.hpp's API
// does not change).

namespace letterbox::crypto {
namespace {

constexpr std::size_t key_size = 32;
constexpr std::size_t digest_size = CryptoPP::SHA512::DIGESTSIZE;

using namespace detail;  // stream_support.hpp

CryptoPP::SecByteBlock hkdf(const std::uint8_t* ikm, std::size_t ikm_size, std::string_view label,
                            std::initializer_list<bytes_view> parts) {
  std::vector<std::uint8_t> info(label.begin(), label.end());
  info.push_back(0);
  for (const auto& part : parts) info.insert(info.end(), part.begin(), part.end());
  CryptoPP::SecByteBlock key(key_size);
  CryptoPP::HKDF<CryptoPP::SHA256> kdf;
  kdf.DeriveKey(key.data(), key.size(), ikm, ikm_size, nullptr, 0, info.data(), info.size());
  return key;
}

// wrap key = HKDF-SHA256(shared, no salt, "letterbox/v2/group-wrap" || 0 || prefix[72] || member).
CryptoPP::SecByteBlock wrap_key(const shared_secret& shared, const std::uint8_t* prefix,
                                const client_id& member) {
  return hkdf(shared.data(), shared.size(), labels::group_wrap,
              {bytes_view(prefix, group_header_prefix_size), bytes_view(member)});
}

constexpr std::array<std::uint8_t, nonce_size> wrap_nonce{};  // each wrap key is used once

struct keys_wiper {
  std::optional<envelope_keys>& keys;
  ~keys_wiper() {
    if (keys) wipe(keys->own_secret);
  }
};

}  // namespace

std::size_t group_header_size(std::size_t members) noexcept {
  return group_header_prefix_size + group_member_entry_size * members + signature_size;
}

std::uint64_t group_envelope_content_size(std::size_t members, std::uint64_t body_size) noexcept {
  constexpr std::uint64_t max = ~std::uint64_t{0};
  const std::uint64_t overhead = group_header_size(members) + envelope_metadata_chunk_size +
                                 envelope_tag_size * envelope_body_chunks(body_size) +
                                 envelope_end_size;
  if (body_size > max - overhead) return max;
  return overhead + body_size;
}

std::uint64_t group_envelope_max_body_size(std::size_t members) noexcept {
  const std::uint64_t fixed = group_header_size(members) + envelope_metadata_chunk_size + envelope_end_size;
  const std::uint64_t room = 0xffffffffull - fixed;  // body + 16 n
  const std::uint64_t per_chunk = envelope_chunk_size + envelope_tag_size;
  const std::uint64_t full = room / per_chunk;
  const std::uint64_t rest = room % per_chunk;
  return full * envelope_chunk_size + (rest > envelope_tag_size ? rest - envelope_tag_size : 0);
}

bool group_envelope_header::addressed_to(const client_id& id) const noexcept {
  return std::any_of(members.begin(), members.end(),
                     [&](const group_member_entry& e) { return e.member == id; });
}

std::optional<std::uint16_t> group_header_member_count(bytes_view prefix) noexcept {
  if (prefix.size() < group_header_prefix_size) return std::nullopt;
  return get_u16le(prefix.data() + 70);
}

std::optional<group_envelope_header> parse_group_envelope_header(bytes_view bytes) {
  const auto count = group_header_member_count(bytes);
  if (!count || bytes.size() < group_header_size(*count)) return std::nullopt;
  const std::uint8_t* p = bytes.data();
  group_envelope_header h;
  h.format = p[0];
  h.type = p[1];
  std::copy_n(p + 2, h.sender.size(), h.sender.begin());
  std::copy_n(p + 18, h.group.size(), h.group.begin());
  std::copy_n(p + 34, h.ephemeral.size(), h.ephemeral.begin());
  h.chunk_size = get_u32le(p + 66);
  h.members.resize(*count);
  for (std::size_t i = 0; i < *count; ++i) {
    const std::uint8_t* e = p + group_header_prefix_size + group_member_entry_size * i;
    std::copy_n(e, 16, h.members[i].member.begin());
    std::copy_n(e + 16, group_wrapped_key_size, h.members[i].wrapped.begin());
  }
  std::copy_n(p + group_header_size(*count) - signature_size, h.sig.size(), h.sig.begin());
  return h;
}

// ---------------------------------------------------------------------------------- writer

struct group_envelope_writer::state {
  group_envelope_header header;
  std::vector<std::uint8_t> header_bytes;
  CryptoPP::ChaCha20Poly1305::Encryption aead;
  replay_id replay{};
  std::uint64_t sent_at = 0;
  std::uint64_t body_size = 0;
  std::string name;
  std::uint64_t next_chunk = 0;
  std::uint64_t body_sealed = 0;
  CryptoPP::SecByteBlock pending{envelope_chunk_size};
  std::size_t pending_size = 0;
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(envelope_max_chunk_size);
  identity_secret signer{};
  CryptoPP::SHA512 chunks_hash;
  bool begun = false;
  bool finished = false;
  bool broken = false;

  ~state() { wipe(signer); }

  void check_usable() const {
    if (broken) throw std::logic_error("group_envelope_writer: an earlier call failed; the envelope is lost");
    if (finished) throw std::logic_error("group_envelope_writer: the envelope is already finished");
  }
  template <typename F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      broken = true;
      CryptoPP::SecureWipeBuffer(pending.data(), pending.size());
      pending_size = 0;
      wipe(signer);
      throw;
    }
  }

  state(const identity_secret& sender_secret, const group_seal_request& request,
        const group_seal_randomness& randomness) {
    const auto type = static_cast<std::uint8_t>(request.type);
    if (type != 18 && type != 19) throw std::invalid_argument("group envelope type must be 18 or 19");
    if (request.name.size() > max_name_size) throw std::invalid_argument("envelope name over 255 bytes");
    if (!valid_text(bytes_view(reinterpret_cast<const std::uint8_t*>(request.name.data()),
                               request.name.size())))
      throw std::invalid_argument("envelope name is not UTF-8 without NUL");
    if (request.type == group_envelope_type::text && !request.name.empty())
      throw std::invalid_argument("a text envelope has no name");
    const std::size_t m = request.members.size();
    if (m == 0 || m > group_max_members)
      throw std::invalid_argument("a group envelope has 1 to 1024 members");
    if (request.body_size > group_envelope_max_body_size(m))
      throw std::invalid_argument("envelope body too large for a u32 content size");
    {
      std::vector<client_id> ids;
      ids.reserve(m);
      for (const auto& r : request.members) ids.push_back(r.member);
      std::sort(ids.begin(), ids.end());
      if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
        throw std::invalid_argument("a member is listed twice");
    }

    header.format = envelope_format;
    header.type = type;
    header.sender = request.sender;
    header.group = request.group;
    header.chunk_size = envelope_chunk_size;
    header_bytes.assign(group_header_size(m), 0);
    std::uint8_t* h = header_bytes.data();

    agreement_secret ephemeral = randomness.ephemeral_secret;
    header.ephemeral = agreement_public_of(ephemeral);
    h[0] = header.format;
    h[1] = header.type;
    std::copy(header.sender.begin(), header.sender.end(), h + 2);
    std::copy(header.group.begin(), header.group.end(), h + 18);
    std::copy(header.ephemeral.begin(), header.ephemeral.end(), h + 34);
    put_u32le(h + 66, header.chunk_size);
    put_u16le(h + 70, static_cast<std::uint16_t>(m));

    CryptoPP::SecByteBlock content(key_size);
    std::copy(randomness.content_key.begin(), randomness.content_key.end(), content.begin());
    header.members.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      auto shared = agree(ephemeral, request.members[i].key);
      if (!shared) {
        wipe(ephemeral);
        throw std::invalid_argument("a member's agreement key gives no shared secret");
      }
      auto wk = wrap_key(*shared, h, request.members[i].member);
      wipe(*shared);
      auto& entry = header.members[i];
      entry.member = request.members[i].member;
      CryptoPP::ChaCha20Poly1305::Encryption wrap;
      wrap.SetKeyWithIV(wk.data(), wk.size(), wrap_nonce.data(), wrap_nonce.size());
      wrap.EncryptAndAuthenticate(entry.wrapped.data(), entry.wrapped.data() + key_size,
                                  envelope_tag_size, wrap_nonce.data(),
                                  static_cast<int>(wrap_nonce.size()), nullptr, 0, content.data(),
                                  key_size);
      std::uint8_t* e = h + group_header_prefix_size + group_member_entry_size * i;
      std::copy(entry.member.begin(), entry.member.end(), e);
      std::copy(entry.wrapped.begin(), entry.wrapped.end(), e + 16);
    }
    wipe(ephemeral);
    const std::size_t signed_size = header_bytes.size() - signature_size;
    header.sig = sign(sender_secret, labels::group_envelope, {bytes_view(h, signed_size)});
    std::copy(header.sig.begin(), header.sig.end(), h + signed_size);

    auto key = hkdf(content.data(), content.size(), labels::group_content_key,
                    {bytes_view(header_bytes)});
    const auto nonce = chunk_nonce(0, false);
    aead.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());

    replay = randomness.replay;
    sent_at = request.sent_at_ms ? *request.sent_at_ms : unix_millis_now();
    body_size = request.body_size;
    name = request.name;
    signer = sender_secret;
  }

  void seal_chunk(const std::uint8_t* plain, std::size_t size, bool last, byte_sink& sink) {
    const auto nonce = chunk_nonce(next_chunk, last);
    aead.EncryptAndAuthenticate(out.data(), out.data() + size, envelope_tag_size, nonce.data(),
                                static_cast<int>(nonce.size()), nullptr, 0, plain, size);
    ++next_chunk;
    chunks_hash.Update(out.data(), size + envelope_tag_size);
    sink.write(bytes_view(out.data(), size + envelope_tag_size));
  }

  void begin_unguarded(byte_sink& sink) {
    sink.write(bytes_view(header_bytes));
    CryptoPP::SecByteBlock meta(envelope_metadata_size);
    std::memset(meta.data(), 0, meta.size());
    std::uint8_t* m = meta.data();
    std::copy(replay.begin(), replay.end(), m);
    put_u64le(m + 16, sent_at);
    put_u64le(m + 24, body_size);
    put_u16le(m + 32, static_cast<std::uint16_t>(name.size()));
    std::memcpy(m + 34, name.data(), name.size());
    seal_chunk(meta.data(), meta.size(), body_size == 0, sink);
  }

  void seal_unguarded(bytes_view body_piece, byte_sink& sink) {
    const std::uint8_t* p = body_piece.data();
    std::size_t left = body_piece.size();
    while (left > 0) {
      const auto chunk = static_cast<std::size_t>(
          std::min<std::uint64_t>(envelope_chunk_size, body_size - body_sealed));
      const bool last = body_sealed + chunk == body_size;
      if (pending_size == 0 && left >= chunk) {
        seal_chunk(p, chunk, last, sink);
        body_sealed += chunk;
        p += chunk;
        left -= chunk;
        continue;
      }
      const std::size_t take = std::min(left, chunk - pending_size);
      std::memcpy(pending.data() + pending_size, p, take);
      pending_size += take;
      p += take;
      left -= take;
      if (pending_size == chunk) {
        seal_chunk(pending.data(), chunk, last, sink);
        body_sealed += chunk;
        pending_size = 0;
      }
    }
  }

  void finish_unguarded(byte_sink& sink) {
    std::array<std::uint8_t, digest_size> digest{};
    chunks_hash.Final(digest.data());
    const signature end =
        sign(signer, labels::group_envelope_end, {bytes_view(header_bytes), bytes_view(digest)});
    wipe(signer);
    sink.write(bytes_view(end));
  }
};

namespace {
group_seal_randomness fresh_group_randomness() {
  group_seal_randomness r;
  r.ephemeral_secret = generate_agreement_secret();
  CryptoPP::AutoSeededRandomPool rng;
  rng.GenerateBlock(r.content_key.data(), r.content_key.size());
  rng.GenerateBlock(r.replay.data(), r.replay.size());
  return r;
}
}  // namespace

group_envelope_writer::group_envelope_writer(const identity_secret& sender_secret,
                                             const group_seal_request& request) {
  group_seal_randomness randomness = fresh_group_randomness();
  try {
    state_ = std::make_unique<state>(sender_secret, request, randomness);
  } catch (...) {
    wipe(randomness.ephemeral_secret);
    wipe(randomness.content_key);
    throw;
  }
  wipe(randomness.ephemeral_secret);
  wipe(randomness.content_key);
}

group_envelope_writer::group_envelope_writer(const identity_secret& sender_secret,
                                             const group_seal_request& request,
                                             const group_seal_randomness& fixed)
    : state_(std::make_unique<state>(sender_secret, request, fixed)) {}

group_envelope_writer::group_envelope_writer(group_envelope_writer&&) noexcept = default;
group_envelope_writer& group_envelope_writer::operator=(group_envelope_writer&&) noexcept = default;
group_envelope_writer::~group_envelope_writer() = default;

std::uint64_t group_envelope_writer::content_size() const noexcept {
  return group_envelope_content_size(state_->header.members.size(), state_->body_size);
}
const replay_id& group_envelope_writer::replay() const noexcept { return state_->replay; }
const group_envelope_header& group_envelope_writer::header() const noexcept { return state_->header; }

void group_envelope_writer::begin(byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (s.begun) throw std::logic_error("group_envelope_writer::begin called twice");
  s.begun = true;
  s.guarded([&] { s.begin_unguarded(out); });
}

void group_envelope_writer::seal(bytes_view body_piece, byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (!s.begun) throw std::logic_error("group_envelope_writer::seal before begin");
  if (body_piece.size() > s.body_size - s.body_sealed - s.pending_size)
    throw std::logic_error("group_envelope_writer::seal: more body bytes than the declared body size");
  s.guarded([&] { s.seal_unguarded(body_piece, out); });
}

void group_envelope_writer::finish(byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (!s.begun) throw std::logic_error("group_envelope_writer::finish before begin");
  if (s.body_sealed != s.body_size)
    throw std::logic_error("group_envelope_writer::finish: fewer body bytes than the declared body size");
  s.finished = true;
  s.guarded([&] { s.finish_unguarded(out); });
}

std::vector<std::uint8_t> seal_group_text(const identity_secret& sender_secret,
                                          const client_id& sender, const group_id& group,
                                          const std::vector<group_recipient>& members,
                                          std::string_view text,
                                          std::optional<std::uint64_t> sent_at_ms) {
  const bytes_view body(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  if (!valid_text(body)) throw std::invalid_argument("text is not UTF-8 without NUL");
  group_seal_request request;
  request.sender = sender;
  request.group = group;
  request.members = members;
  request.type = group_envelope_type::text;
  request.body_size = text.size();
  request.sent_at_ms = sent_at_ms;
  group_envelope_writer writer(sender_secret, request);
  vector_sink sink;
  sink.bytes.reserve(writer.content_size());
  writer.begin(sink);
  writer.seal(body, sink);
  writer.finish(sink);
  return std::move(sink.bytes);
}

// ---------------------------------------------------------------------------------- reader

std::string_view to_string(group_open_error error) noexcept {
  switch (error) {
    case group_open_error::none: return "none";
    case group_open_error::truncated: return "truncated";
    case group_open_error::bad_format: return "unknown envelope format";
    case group_open_error::wrong_type: return "envelope type differs from the message type";
    case group_open_error::wrong_sender: return "envelope sender differs from the message sender";
    case group_open_error::wrong_group: return "envelope is for another group";
    case group_open_error::bad_chunk_size: return "unsupported chunk size";
    case group_open_error::bad_member_list: return "malformed member list";
    case group_open_error::not_addressed: return "not addressed to you";
    case group_open_error::unknown_sender: return "sender's identity key unknown";
    case group_open_error::sender_key_mismatch: return "identity key does not match the sender ID";
    case group_open_error::bad_signature: return "bad envelope signature";
    case group_open_error::bad_ephemeral_key: return "bad ephemeral key";
    case group_open_error::bad_wrapped_key: return "the content key wrapped for you does not open";
    case group_open_error::bad_chunk: return "a chunk failed authentication";
    case group_open_error::bad_metadata: return "malformed metadata";
    case group_open_error::size_mismatch: return "sizes do not add up";
    case group_open_error::trailing_data: return "bytes after the end signature";
    case group_open_error::invalid_text: return "text is not valid UTF-8";
    case group_open_error::handler_failed: return "the receiving handler failed";
    case group_open_error::bad_end_signature: return "bad end signature";
  }
  return "unknown error";
}

struct group_envelope_reader::state {
  enum class phase { prefix, members, chunk0, body, end, done, failed };

  group_envelope_expectations expect;
  group_envelope_handler* handler;
  phase ph = phase::prefix;
  group_open_error error = group_open_error::none;
  std::optional<group_envelope_header> header;
  std::vector<std::uint8_t> header_bytes;  // at most group_header_size(1024) = 65,672
  std::size_t members = 0;
  identity_key sender_key{};
  std::optional<envelope_metadata> meta;
  CryptoPP::ChaCha20Poly1305::Decryption aead;
  CryptoPP::SHA512 chunks_hash;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(envelope_max_chunk_size);
  std::size_t filled = 0;
  CryptoPP::SecByteBlock plain{envelope_chunk_size};
  std::uint64_t consumed = 0;
  std::uint64_t next_chunk = 1;
  std::uint64_t body_received = 0;
  utf8_validator utf8;
  bool finished = false;
  bool completed = false;

  state(const group_envelope_expectations& e, group_envelope_handler& h) : expect(e), handler(&h) {}

  bool is_text() const { return expect.type == group_envelope_type::text; }

  void fail(group_open_error e) {
    ph = phase::failed;
    error = e;
    CryptoPP::SecureWipeBuffer(plain.data(), plain.size());
  }

  template <typename F>
  void call_handler(F&& f) {
    try {
      f();
    } catch (...) {
      fail(group_open_error::handler_failed);
      throw;
    }
  }

  std::size_t need() const {
    switch (ph) {
      case phase::prefix: return group_header_prefix_size;
      case phase::members: return group_header_size(members) - group_header_prefix_size;
      case phase::chunk0: return envelope_metadata_chunk_size;
      case phase::body:
        return static_cast<std::size_t>(
                   std::min<std::uint64_t>(envelope_chunk_size, meta->body_size - body_received)) +
               envelope_tag_size;
      case phase::end: return envelope_end_size;
      default: return 0;
    }
  }

  void process_prefix(const std::uint8_t* p) {
    header_bytes.assign(p, p + group_header_prefix_size);
    if (p[0] != envelope_format) return fail(group_open_error::bad_format);
    if (p[1] != static_cast<std::uint8_t>(expect.type)) return fail(group_open_error::wrong_type);
    if (expect.type != group_envelope_type::text && expect.type != group_envelope_type::file)
      return fail(group_open_error::wrong_type);
    if (!std::equal(expect.sender.begin(), expect.sender.end(), p + 2))
      return fail(group_open_error::wrong_sender);
    if (expect.group && !std::equal(expect.group->begin(), expect.group->end(), p + 18))
      return fail(group_open_error::wrong_group);
    if (get_u32le(p + 66) != envelope_chunk_size) return fail(group_open_error::bad_chunk_size);
    members = get_u16le(p + 70);
    if (members == 0 || members > group_max_members) return fail(group_open_error::bad_member_list);
    if (expect.content_size && *expect.content_size < group_envelope_content_size(members, 0))
      return fail(group_open_error::truncated);
    ph = phase::members;
  }

  void process_header() {
    header = parse_group_envelope_header(bytes_view(header_bytes));
    const auto& h = *header;
    std::vector<client_id> ids;
    ids.reserve(h.members.size());
    for (const auto& e : h.members) ids.push_back(e.member);
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
      return fail(group_open_error::bad_member_list);
    const auto mine = std::find_if(h.members.begin(), h.members.end(),
                                   [&](const group_member_entry& e) { return e.member == expect.self; });
    if (mine == h.members.end()) return fail(group_open_error::not_addressed);
    std::optional<envelope_keys> keys;
    keys_wiper wiper{keys};
    call_handler([&] { keys = handler->keys(h); });
    if (!keys) return fail(group_open_error::unknown_sender);
    if (derive_client_id(keys->sender_key) != h.sender) return fail(group_open_error::sender_key_mismatch);
    const std::size_t signed_size = header_bytes.size() - signature_size;
    if (!verify(keys->sender_key, labels::group_envelope, {bytes_view(header_bytes.data(), signed_size)},
                h.sig))
      return fail(group_open_error::bad_signature);
    auto shared = agree(keys->own_secret, h.ephemeral);
    if (!shared) return fail(group_open_error::bad_ephemeral_key);
    sender_key = keys->sender_key;
    auto wk = wrap_key(*shared, header_bytes.data(), expect.self);
    wipe(*shared);
    CryptoPP::SecByteBlock content(key_size);
    CryptoPP::ChaCha20Poly1305::Decryption unwrap;
    unwrap.SetKeyWithIV(wk.data(), wk.size(), wrap_nonce.data(), wrap_nonce.size());
    if (!unwrap.DecryptAndVerify(content.data(), mine->wrapped.data() + key_size, envelope_tag_size,
                                 wrap_nonce.data(), static_cast<int>(wrap_nonce.size()), nullptr, 0,
                                 mine->wrapped.data(), key_size))
      return fail(group_open_error::bad_wrapped_key);
    auto key = hkdf(content.data(), content.size(), labels::group_content_key,
                    {bytes_view(header_bytes)});
    const auto nonce = chunk_nonce(0, false);
    aead.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
    ph = phase::chunk0;
  }

  bool open_chunk0(const std::uint8_t* c, bool last) {
    const auto nonce = chunk_nonce(0, last);
    return aead.DecryptAndVerify(plain.data(), c + envelope_metadata_size, envelope_tag_size,
                                 nonce.data(), static_cast<int>(nonce.size()), nullptr, 0, c,
                                 envelope_metadata_size);
  }

  void process_chunk0() {
    const std::uint8_t* c = buffer.data();
    bool last = false;
    if (expect.content_size) {
      last = *expect.content_size == group_envelope_content_size(members, 0);
      if (!open_chunk0(c, last)) return fail(group_open_error::bad_chunk);
    } else if (!open_chunk0(c, false)) {
      last = true;
      if (!open_chunk0(c, true)) return fail(group_open_error::bad_chunk);
    }
    chunks_hash.Update(c, envelope_metadata_chunk_size);
    const std::uint8_t* m = plain.data();
    envelope_metadata md;
    std::copy_n(m, md.replay.size(), md.replay.begin());
    md.sent_at_ms = get_u64le(m + 16);
    md.body_size = get_u64le(m + 24);
    const std::size_t name_size = get_u16le(m + 32);
    if (name_size > max_name_size) return fail(group_open_error::bad_metadata);
    for (std::size_t i = 34 + name_size; i < envelope_metadata_size; ++i)
      if (m[i] != 0) return fail(group_open_error::bad_metadata);
    if (!valid_text(bytes_view(m + 34, name_size))) return fail(group_open_error::bad_metadata);
    if (is_text() && name_size != 0) return fail(group_open_error::bad_metadata);
    if (md.body_size > group_envelope_max_body_size(members)) return fail(group_open_error::bad_metadata);
    if (last != (md.body_size == 0)) return fail(group_open_error::bad_metadata);
    if (expect.content_size &&
        *expect.content_size != group_envelope_content_size(members, md.body_size))
      return fail(group_open_error::size_mismatch);
    md.name.assign(reinterpret_cast<const char*>(m + 34), name_size);
    CryptoPP::SecureWipeBuffer(plain.data(), envelope_metadata_size);
    meta = md;
    ph = md.body_size == 0 ? phase::end : phase::body;
    call_handler([&] { handler->metadata(*meta); });
  }

  void process_body(const std::uint8_t* unit, std::size_t unit_size) {
    const std::size_t len = unit_size - envelope_tag_size;
    const bool last = body_received + len == meta->body_size;
    const auto nonce = chunk_nonce(next_chunk, last);
    if (!aead.DecryptAndVerify(plain.data(), unit + len, envelope_tag_size, nonce.data(),
                               static_cast<int>(nonce.size()), nullptr, 0, unit, len))
      return fail(group_open_error::bad_chunk);
    chunks_hash.Update(unit, unit_size);
    if (is_text() && !utf8.feed(plain.data(), len)) return fail(group_open_error::invalid_text);
    body_received += len;
    ++next_chunk;
    if (last) ph = phase::end;
    call_handler([&] { handler->body(bytes_view(plain.data(), len)); });
  }

  void process_end(const std::uint8_t* unit) {
    signature end{};
    std::copy_n(unit, end.size(), end.begin());
    std::array<std::uint8_t, digest_size> digest{};
    chunks_hash.Final(digest.data());
    if (!verify(sender_key, labels::group_envelope_end,
                {bytes_view(header_bytes), bytes_view(digest)}, end))
      return fail(group_open_error::bad_end_signature);
    ph = phase::done;
  }

  bool feed(bytes_view bytes) {
    std::size_t off = 0;
    while (true) {
      if (ph == phase::failed) return false;
      if (ph == phase::done) {
        if (off < bytes.size()) {
          fail(group_open_error::trailing_data);
          return false;
        }
        return true;
      }
      if (off == bytes.size()) return true;
      const std::size_t n = need();
      const std::size_t available = bytes.size() - off;
      if (ph == phase::body && filled == 0 && available >= n) {
        consumed += n;
        off += n;
        process_body(bytes.data() + off - n, n);
        continue;
      }
      const std::size_t take = std::min(n - filled, available);
      if (ph == phase::members) {
        header_bytes.insert(header_bytes.end(), bytes.data() + off, bytes.data() + off + take);
      } else {
        std::memcpy(buffer.data() + filled, bytes.data() + off, take);
      }
      filled += take;
      off += take;
      consumed += take;
      if (filled < n) return true;
      filled = 0;
      switch (ph) {
        case phase::prefix: process_prefix(buffer.data()); break;
        case phase::members: process_header(); break;
        case phase::chunk0: process_chunk0(); break;
        case phase::body: process_body(buffer.data(), n); break;
        case phase::end: process_end(buffer.data()); break;
        default: break;
      }
    }
  }

  bool finish() {
    if (finished) return completed;
    finished = true;
    if (ph == phase::failed) return false;
    if (ph != phase::done) {
      fail(group_open_error::truncated);
      return false;
    }
    if (is_text() && !utf8.complete()) {
      fail(group_open_error::invalid_text);
      return false;
    }
    completed = true;
    return true;
  }
};

group_envelope_reader::group_envelope_reader(const group_envelope_expectations& expect,
                                             group_envelope_handler& handler)
    : state_(std::make_unique<state>(expect, handler)) {}
group_envelope_reader::group_envelope_reader(group_envelope_reader&&) noexcept = default;
group_envelope_reader& group_envelope_reader::operator=(group_envelope_reader&&) noexcept = default;
group_envelope_reader::~group_envelope_reader() = default;

bool group_envelope_reader::feed(bytes_view bytes) {
  if (state_->finished) throw std::logic_error("group_envelope_reader::feed after finish");
  return state_->feed(bytes);
}
bool group_envelope_reader::finish() { return state_->finish(); }
bool group_envelope_reader::failed() const noexcept { return state_->ph == state::phase::failed; }
bool group_envelope_reader::complete() const noexcept { return state_->completed; }
group_open_error group_envelope_reader::error() const noexcept { return state_->error; }
const std::optional<group_envelope_header>& group_envelope_reader::header() const noexcept {
  return state_->header;
}
const std::optional<envelope_metadata>& group_envelope_reader::metadata() const noexcept {
  return state_->meta;
}
std::uint64_t group_envelope_reader::consumed() const noexcept { return state_->consumed; }

opened_group_text open_group_text(bytes_view content, const client_id& sender,
                                  const client_id& self, const group_key_lookup& lookup) {
  struct collector final : group_envelope_handler {
    const group_key_lookup& lookup;
    std::string text;
    explicit collector(const group_key_lookup& l) : lookup(l) {}
    std::optional<envelope_keys> keys(const group_envelope_header& h) override { return lookup(h); }
    void body(bytes_view piece) override { text.append(piece.begin(), piece.end()); }
  } handler(lookup);
  group_envelope_expectations expect;
  expect.type = group_envelope_type::text;
  expect.sender = sender;
  expect.self = self;
  expect.content_size = content.size();
  group_envelope_reader reader(expect, handler);
  reader.feed(content);
  opened_group_text result;
  if (reader.finish()) {
    result.group = reader.header()->group;
    result.metadata = *reader.metadata();
    result.text = std::move(handler.text);
  } else {
    result.error = reader.error();
    CryptoPP::SecureWipeBuffer(reinterpret_cast<std::uint8_t*>(handler.text.data()),
                               handler.text.size());
  }
  return result;
}

}  // namespace letterbox::crypto
