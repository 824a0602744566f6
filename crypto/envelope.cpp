#include "envelope.hpp"

#include <cryptopp/chachapoly.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/misc.h>
#include <cryptopp/osrng.h>
#include <cryptopp/secblock.h>
#include <cryptopp/sha.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "stream_support.hpp"

namespace letterbox::crypto {
namespace {

// SEND's content size is a u32: no envelope can be larger (envelope_max_body_size).
constexpr std::uint64_t max_body_size = envelope_max_body_size;
static_assert(envelope_header_size + envelope_metadata_chunk_size + max_body_size +
                  envelope_tag_size * ((max_body_size + envelope_chunk_size - 1) / envelope_chunk_size) +
                  envelope_end_size ==
              0xffffffffull);
static_assert(envelope_end_size == signature_size);
constexpr std::size_t key_size = 32;
constexpr std::size_t chunks_digest_size = CryptoPP::SHA512::DIGESTSIZE;  // 64

using namespace detail;  // stream_support.hpp

// content key = HKDF-SHA256(shared, no salt (= 32 zero bytes), label || 0x00 || header[134]).
CryptoPP::SecByteBlock content_key(const shared_secret& shared, const std::uint8_t* header) {
  std::array<std::uint8_t, labels::content_key.size() + 1 + envelope_header_size> info{};
  std::memcpy(info.data(), labels::content_key.data(), labels::content_key.size());
  info[labels::content_key.size()] = 0;
  std::memcpy(info.data() + labels::content_key.size() + 1, header, envelope_header_size);
  CryptoPP::SecByteBlock key(key_size);
  CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
  hkdf.DeriveKey(key.data(), key.size(), shared.data(), shared.size(), nullptr, 0, info.data(),
                 info.size());
  return key;
}

// The end signature's fields after the label: header[134] || SHA-512 of every chunk's ciphertext.
std::array<std::uint8_t, chunks_digest_size> chunks_digest(CryptoPP::SHA512& hash) {
  std::array<std::uint8_t, chunks_digest_size> digest{};
  hash.Final(digest.data());
  return digest;
}

struct keys_wiper {
  std::optional<envelope_keys>& keys;
  ~keys_wiper() {
    if (keys) wipe(keys->own_secret);
  }
};

}  // namespace

std::uint64_t envelope_body_chunks(std::uint64_t body_size) noexcept {
  return body_size / envelope_chunk_size + (body_size % envelope_chunk_size != 0 ? 1 : 0);
}

std::uint64_t envelope_content_size(std::uint64_t body_size) noexcept {
  // Saturates at 2^64 - 1 rather than wrap (16 n <= 2^52, so only the sum can overflow).
  constexpr std::uint64_t max = ~std::uint64_t{0};
  const std::uint64_t overhead = envelope_header_size + envelope_metadata_chunk_size +
                                 envelope_tag_size * envelope_body_chunks(body_size) +
                                 envelope_end_size;
  if (body_size > max - overhead) return max;
  return overhead + body_size;
}

std::uint64_t unix_millis_now() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::optional<envelope_header> parse_envelope_header(bytes_view bytes) {
  if (bytes.size() < envelope_header_size) return std::nullopt;
  const std::uint8_t* p = bytes.data();
  envelope_header h;
  h.format = p[0];
  h.type = p[1];
  std::copy_n(p + 2, h.sender.size(), h.sender.begin());
  std::copy_n(p + 18, h.recipient.size(), h.recipient.begin());
  std::copy_n(p + 34, h.ephemeral.size(), h.ephemeral.begin());
  h.chunk_size = get_u32le(p + 66);
  std::copy_n(p + 70, h.sig.size(), h.sig.begin());
  return h;
}

// ---------------------------------------------------------------------------------- writer

struct envelope_writer::state {
  envelope_header header{};
  std::array<std::uint8_t, envelope_header_size> header_bytes{};
  CryptoPP::ChaCha20Poly1305::Encryption aead;
  replay_id replay{};
  std::uint64_t sent_at = 0;
  std::uint64_t body_size = 0;
  std::string name;
  std::uint64_t next_chunk = 0;   // index of the next chunk to seal
  std::uint64_t body_sealed = 0;  // body bytes sealed and written
  CryptoPP::SecByteBlock pending{envelope_chunk_size};  // a body chunk being filled
  std::size_t pending_size = 0;
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(envelope_max_chunk_size);
  identity_secret signer{};  // for the end signature; wiped once it is made or the writer broke
  CryptoPP::SHA512 chunks_hash;  // every chunk's ciphertext (with its tag), as written
  bool begun = false;
  bool finished = false;
  bool broken = false;  // a write (or anything else) threw: the stream is lost, refuse the rest

  ~state() { wipe(signer); }

  void check_usable() const {
    if (broken) throw std::logic_error("envelope_writer: an earlier call failed; the envelope is lost");
    if (finished) throw std::logic_error("envelope_writer: the envelope is already finished");
  }
  // Runs f; any exception breaks the writer for good (the sink may hold a partial chunk, and a
  // retry would seal other bytes at the next index) and propagates.
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

  state(const identity_secret& sender_secret, const seal_request& request,
        const seal_randomness& randomness) {
    const auto type = static_cast<std::uint8_t>(request.type);
    if (type != 16 && type != 17) throw std::invalid_argument("envelope type must be 16 or 17");
    if (request.name.size() > max_name_size)
      throw std::invalid_argument("envelope name over 255 bytes");
    if (!valid_text(bytes_view(reinterpret_cast<const std::uint8_t*>(request.name.data()),
                               request.name.size())))
      throw std::invalid_argument("envelope name is not UTF-8 without NUL");
    if (request.type == envelope_type::text && !request.name.empty())
      throw std::invalid_argument("a text envelope has no name");
    if (request.body_size > max_body_size)
      throw std::invalid_argument("envelope body too large for a u32 content size");

    agreement_secret ephemeral = randomness.ephemeral_secret;
    auto shared = agree(ephemeral, request.recipient_key);
    const agreement_key ephemeral_public = agreement_public_of(ephemeral);
    wipe(ephemeral);
    if (!shared) throw std::invalid_argument("recipient agreement key gives no shared secret");

    header.format = envelope_format;
    header.type = type;
    header.sender = request.sender;
    header.recipient = request.recipient;
    header.ephemeral = ephemeral_public;
    header.chunk_size = envelope_chunk_size;
    std::uint8_t* h = header_bytes.data();
    h[0] = header.format;
    h[1] = header.type;
    std::copy(header.sender.begin(), header.sender.end(), h + 2);
    std::copy(header.recipient.begin(), header.recipient.end(), h + 18);
    std::copy(header.ephemeral.begin(), header.ephemeral.end(), h + 34);
    put_u32le(h + 66, header.chunk_size);
    header.sig = sign(sender_secret, labels::envelope, {bytes_view(h, envelope_signed_size)});
    std::copy(header.sig.begin(), header.sig.end(), h + envelope_signed_size);

    auto key = content_key(*shared, h);
    wipe(*shared);
    const auto nonce = chunk_nonce(0, false);
    aead.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());

    replay = randomness.replay;
    sent_at = request.sent_at_ms ? *request.sent_at_ms : unix_millis_now();
    body_size = request.body_size;
    name = request.name;
    signer = sender_secret;  // last: nothing after it throws (~state would not run to wipe it)
  }

  void seal_chunk(const std::uint8_t* plain, std::size_t size, bool last, byte_sink& sink) {
    const auto nonce = chunk_nonce(next_chunk, last);
    aead.EncryptAndAuthenticate(out.data(), out.data() + size, envelope_tag_size, nonce.data(),
                                static_cast<int>(nonce.size()), nullptr, 0, plain, size);
    ++next_chunk;
    chunks_hash.Update(out.data(), size + envelope_tag_size);
    sink.write(bytes_view(out.data(), size + envelope_tag_size));
  }
};

namespace {
seal_randomness fresh_randomness() {
  seal_randomness r;
  r.ephemeral_secret = generate_agreement_secret();
  CryptoPP::AutoSeededRandomPool rng;
  rng.GenerateBlock(r.replay.data(), r.replay.size());
  return r;
}
}  // namespace

envelope_writer::envelope_writer(const identity_secret& sender_secret, const seal_request& request) {
  seal_randomness randomness = fresh_randomness();
  try {
    state_ = std::make_unique<state>(sender_secret, request, randomness);
  } catch (...) {
    wipe(randomness.ephemeral_secret);
    throw;
  }
  wipe(randomness.ephemeral_secret);
}

envelope_writer::envelope_writer(const identity_secret& sender_secret, const seal_request& request,
                                 const seal_randomness& fixed)
    : state_(std::make_unique<state>(sender_secret, request, fixed)) {}

envelope_writer::envelope_writer(envelope_writer&&) noexcept = default;
envelope_writer& envelope_writer::operator=(envelope_writer&&) noexcept = default;
envelope_writer::~envelope_writer() = default;

std::uint64_t envelope_writer::content_size() const noexcept {
  return envelope_content_size(state_->body_size);
}
const replay_id& envelope_writer::replay() const noexcept { return state_->replay; }
const envelope_header& envelope_writer::header() const noexcept { return state_->header; }

void envelope_writer::begin(byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (s.begun) throw std::logic_error("envelope_writer::begin called twice");
  s.begun = true;
  s.guarded([&] { begin_unguarded(out); });
}

void envelope_writer::begin_unguarded(byte_sink& out) {
  auto& s = *state_;
  out.write(bytes_view(s.header_bytes));
  CryptoPP::SecByteBlock meta(envelope_metadata_size);
  std::memset(meta.data(), 0, meta.size());
  std::uint8_t* m = meta.data();
  std::copy(s.replay.begin(), s.replay.end(), m);
  put_u64le(m + 16, s.sent_at);
  put_u64le(m + 24, s.body_size);
  put_u16le(m + 32, static_cast<std::uint16_t>(s.name.size()));
  std::memcpy(m + 34, s.name.data(), s.name.size());
  s.seal_chunk(meta.data(), meta.size(), s.body_size == 0, out);
}

void envelope_writer::seal(bytes_view body_piece, byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (!s.begun) throw std::logic_error("envelope_writer::seal before begin");
  if (body_piece.size() > s.body_size - s.body_sealed - s.pending_size)
    throw std::logic_error("envelope_writer::seal: more body bytes than the declared body size");
  s.guarded([&] { seal_unguarded(body_piece, out); });
}

void envelope_writer::seal_unguarded(bytes_view body_piece, byte_sink& out) {
  auto& s = *state_;
  const std::uint8_t* p = body_piece.data();
  std::size_t left = body_piece.size();
  while (left > 0) {
    const auto chunk = static_cast<std::size_t>(
        std::min<std::uint64_t>(envelope_chunk_size, s.body_size - s.body_sealed));
    const bool last = s.body_sealed + chunk == s.body_size;
    if (s.pending_size == 0 && left >= chunk) {  // a whole chunk in the caller's piece
      s.seal_chunk(p, chunk, last, out);
      s.body_sealed += chunk;
      p += chunk;
      left -= chunk;
      continue;
    }
    const std::size_t take = std::min(left, chunk - s.pending_size);
    std::memcpy(s.pending.data() + s.pending_size, p, take);
    s.pending_size += take;
    p += take;
    left -= take;
    if (s.pending_size == chunk) {
      s.seal_chunk(s.pending.data(), chunk, last, out);
      s.body_sealed += chunk;
      s.pending_size = 0;
    }
  }
}

void envelope_writer::finish(byte_sink& out) {
  auto& s = *state_;
  s.check_usable();
  if (!s.begun) throw std::logic_error("envelope_writer::finish before begin");
  if (s.body_sealed != s.body_size)
    throw std::logic_error("envelope_writer::finish: fewer body bytes than the declared body size");
  s.finished = true;
  s.guarded([&] { finish_unguarded(out); });
}

void envelope_writer::finish_unguarded(byte_sink& out) {
  auto& s = *state_;
  const auto digest = chunks_digest(s.chunks_hash);
  const signature end =
      sign(s.signer, labels::envelope_end, {bytes_view(s.header_bytes), bytes_view(digest)});
  wipe(s.signer);
  out.write(bytes_view(end));
}

std::vector<std::uint8_t> seal_text(const identity_secret& sender_secret, const client_id& sender,
                                    const client_id& recipient, const agreement_key& recipient_key,
                                    std::string_view text, std::optional<std::uint64_t> sent_at_ms) {
  const bytes_view body(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  if (!valid_text(body)) throw std::invalid_argument("text is not UTF-8 without NUL");
  seal_request request;
  request.sender = sender;
  request.recipient = recipient;
  request.recipient_key = recipient_key;
  request.type = envelope_type::text;
  request.body_size = text.size();
  request.sent_at_ms = sent_at_ms;
  envelope_writer writer(sender_secret, request);
  vector_sink sink;
  sink.bytes.reserve(writer.content_size());
  writer.begin(sink);
  writer.seal(body, sink);
  writer.finish(sink);
  return std::move(sink.bytes);
}

// ---------------------------------------------------------------------------------- reader

std::string_view to_string(open_error error) noexcept {
  switch (error) {
    case open_error::none: return "none";
    case open_error::truncated: return "truncated";
    case open_error::bad_format: return "unknown envelope format";
    case open_error::wrong_type: return "envelope type differs from the message type";
    case open_error::wrong_sender: return "envelope sender differs from the message sender";
    case open_error::wrong_recipient: return "envelope is for another recipient";
    case open_error::bad_chunk_size: return "unsupported chunk size";
    case open_error::unknown_sender: return "sender's identity key unknown";
    case open_error::sender_key_mismatch: return "identity key does not match the sender ID";
    case open_error::bad_signature: return "bad envelope signature";
    case open_error::bad_ephemeral_key: return "bad ephemeral key";
    case open_error::bad_chunk: return "a chunk failed authentication";
    case open_error::bad_metadata: return "malformed metadata";
    case open_error::size_mismatch: return "sizes do not add up";
    case open_error::trailing_data: return "bytes after the end signature";
    case open_error::invalid_text: return "text is not valid UTF-8";
    case open_error::handler_failed: return "the receiving handler failed";
    case open_error::bad_end_signature: return "bad end signature";
  }
  return "unknown error";
}

struct envelope_reader::state {
  enum class phase { header, chunk0, body, end, done, failed };

  envelope_expectations expect;
  envelope_handler* handler;
  phase ph = phase::header;
  open_error error = open_error::none;
  std::optional<envelope_header> header;
  std::array<std::uint8_t, envelope_header_size> header_bytes{};
  identity_key sender_key{};  // checked against the header's sender; verifies the end signature
  std::optional<envelope_metadata> meta;
  CryptoPP::ChaCha20Poly1305::Decryption aead;
  CryptoPP::SHA512 chunks_hash;  // every chunk's ciphertext (with its tag), as verified
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(envelope_max_chunk_size);
  std::size_t filled = 0;
  CryptoPP::SecByteBlock plain{envelope_chunk_size};
  std::uint64_t consumed = 0;
  std::uint64_t next_chunk = 1;
  std::uint64_t body_received = 0;
  utf8_validator utf8;
  bool finished = false;
  bool completed = false;

  state(const envelope_expectations& e, envelope_handler& h) : expect(e), handler(&h) {}

  bool is_text() const { return expect.type == envelope_type::text; }

  void fail(open_error e) {
    ph = phase::failed;
    error = e;
    CryptoPP::SecureWipeBuffer(plain.data(), plain.size());
  }

  template <typename F>
  void call_handler(F&& f) {
    try {
      f();
    } catch (...) {
      fail(open_error::handler_failed);
      throw;
    }
  }

  std::size_t need() const {
    switch (ph) {
      case phase::header: return envelope_header_size;
      case phase::chunk0: return envelope_metadata_chunk_size;
      case phase::body:
        return static_cast<std::size_t>(
                   std::min<std::uint64_t>(envelope_chunk_size, meta->body_size - body_received)) +
               envelope_tag_size;
      case phase::end: return envelope_end_size;
      default: return 0;
    }
  }

  void process_header(const std::uint8_t* unit) {
    header = parse_envelope_header(bytes_view(unit, envelope_header_size));
    std::copy_n(unit, envelope_header_size, header_bytes.begin());
    const auto& h = *header;
    if (h.format != envelope_format) return fail(open_error::bad_format);
    if (h.type != static_cast<std::uint8_t>(expect.type)) return fail(open_error::wrong_type);
    if (expect.type != envelope_type::text && expect.type != envelope_type::file)
      return fail(open_error::wrong_type);  // only 16 and 17 are envelopes, whatever was cast
    if (h.sender != expect.sender) return fail(open_error::wrong_sender);
    if (h.recipient != expect.recipient) return fail(open_error::wrong_recipient);
    if (h.chunk_size != envelope_chunk_size) return fail(open_error::bad_chunk_size);
    std::optional<envelope_keys> keys;
    keys_wiper wiper{keys};
    call_handler([&] { keys = handler->keys(h); });
    if (!keys) return fail(open_error::unknown_sender);
    if (derive_client_id(keys->sender_key) != h.sender) return fail(open_error::sender_key_mismatch);
    if (!verify(keys->sender_key, labels::envelope, {bytes_view(unit, envelope_signed_size)}, h.sig))
      return fail(open_error::bad_signature);
    auto shared = agree(keys->own_secret, h.ephemeral);
    if (!shared) return fail(open_error::bad_ephemeral_key);
    sender_key = keys->sender_key;
    auto key = content_key(*shared, unit);
    wipe(*shared);
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

  // Chunk 0 (in buffer). It is the final chunk iff its body size is 0. With the content size
  // known, that decides the flag it is opened with (final iff the size is that of an empty body);
  // in a stream it is opened with last = 0, else last = 1: the flag is authenticated either way,
  // and the body size must agree with the flag that verified.
  void process_chunk0() {
    filled = 0;
    const std::uint8_t* c = buffer.data();
    bool last = false;
    if (expect.content_size) {
      last = *expect.content_size == envelope_content_size(0);
      if (!open_chunk0(c, last)) return fail(open_error::bad_chunk);
    } else if (!open_chunk0(c, false)) {
      last = true;
      if (!open_chunk0(c, true)) return fail(open_error::bad_chunk);
    }
    chunks_hash.Update(c, envelope_metadata_chunk_size);
    const std::uint8_t* m = plain.data();
    envelope_metadata md;
    std::copy_n(m, md.replay.size(), md.replay.begin());
    md.sent_at_ms = get_u64le(m + 16);
    md.body_size = get_u64le(m + 24);
    const std::size_t name_size = get_u16le(m + 32);
    if (name_size > max_name_size) return fail(open_error::bad_metadata);
    for (std::size_t i = 34 + name_size; i < envelope_metadata_size; ++i)
      if (m[i] != 0) return fail(open_error::bad_metadata);
    if (!valid_text(bytes_view(m + 34, name_size))) return fail(open_error::bad_metadata);
    if (is_text() && name_size != 0) return fail(open_error::bad_metadata);
    if (md.body_size > max_body_size) return fail(open_error::bad_metadata);
    if (last != (md.body_size == 0)) return fail(open_error::bad_metadata);
    if (expect.content_size && *expect.content_size != envelope_content_size(md.body_size))
      return fail(open_error::size_mismatch);
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
      return fail(open_error::bad_chunk);
    chunks_hash.Update(unit, unit_size);
    if (is_text() && !utf8.feed(plain.data(), len)) return fail(open_error::invalid_text);
    body_received += len;
    ++next_chunk;
    if (last) ph = phase::end;
    call_handler([&] { handler->body(bytes_view(plain.data(), len)); });
  }

  // The end signature (in buffer), over the header and every chunk's ciphertext.
  void process_end(const std::uint8_t* unit) {
    signature end{};
    std::copy_n(unit, end.size(), end.begin());
    const auto digest = chunks_digest(chunks_hash);
    if (!verify(sender_key, labels::envelope_end, {bytes_view(header_bytes), bytes_view(digest)}, end))
      return fail(open_error::bad_end_signature);
    ph = phase::done;
  }

  bool feed(bytes_view bytes) {
    std::size_t off = 0;
    while (true) {
      if (ph == phase::failed) return false;
      if (ph == phase::done) {
        if (off < bytes.size()) {
          fail(open_error::trailing_data);
          return false;
        }
        return true;
      }
      if (off == bytes.size()) return true;
      const std::size_t n = need();
      const std::size_t available = bytes.size() - off;
      if (ph == phase::body && filled == 0 && available >= n) {  // a whole chunk in the input
        consumed += n;
        off += n;
        process_body(bytes.data() + off - n, n);
        continue;
      }
      const std::size_t take = std::min(n - filled, available);
      std::memcpy(buffer.data() + filled, bytes.data() + off, take);
      filled += take;
      off += take;
      consumed += take;
      if (filled < n) return true;
      filled = 0;
      switch (ph) {
        case phase::header: process_header(buffer.data()); break;
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
      fail(open_error::truncated);
      return false;
    }
    if (is_text() && !utf8.complete()) {
      fail(open_error::invalid_text);
      return false;
    }
    completed = true;
    return true;
  }
};

envelope_reader::envelope_reader(const envelope_expectations& expect, envelope_handler& handler)
    : state_(std::make_unique<state>(expect, handler)) {}
envelope_reader::envelope_reader(envelope_reader&&) noexcept = default;
envelope_reader& envelope_reader::operator=(envelope_reader&&) noexcept = default;
envelope_reader::~envelope_reader() = default;

bool envelope_reader::feed(bytes_view bytes) {
  if (state_->finished) throw std::logic_error("envelope_reader::feed after finish");
  return state_->feed(bytes);
}
bool envelope_reader::finish() { return state_->finish(); }
bool envelope_reader::failed() const noexcept { return state_->ph == state::phase::failed; }
bool envelope_reader::complete() const noexcept { return state_->completed; }
open_error envelope_reader::error() const noexcept { return state_->error; }
const std::optional<envelope_header>& envelope_reader::header() const noexcept {
  return state_->header;
}
const std::optional<envelope_metadata>& envelope_reader::metadata() const noexcept {
  return state_->meta;
}
std::uint64_t envelope_reader::consumed() const noexcept { return state_->consumed; }

opened_text open_text(bytes_view content, const client_id& sender, const client_id& recipient,
                      const key_lookup& lookup) {
  struct collector final : envelope_handler {
    const key_lookup& lookup;
    std::string text;
    explicit collector(const key_lookup& l) : lookup(l) {}
    std::optional<envelope_keys> keys(const envelope_header& h) override { return lookup(h); }
    void body(bytes_view piece) override { text.append(piece.begin(), piece.end()); }
  } handler(lookup);
  envelope_expectations expect;
  expect.type = envelope_type::text;
  expect.sender = sender;
  expect.recipient = recipient;
  expect.content_size = content.size();
  envelope_reader reader(expect, handler);
  reader.feed(content);
  opened_text result;
  if (reader.finish()) {
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
