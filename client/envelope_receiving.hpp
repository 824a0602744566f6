// Receiving one sealed envelope (§16) or group envelope (§16a) from a PULL or a push: what
// receive_sealed (operations.cpp) and receive_group (groups.cpp) share once the keys and the
// expectations are known. Internal to client/.
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "client_state.hpp"
#include "downloads.hpp"
#include "envelope.hpp"
#include "group_envelope.hpp"
#include "operations.hpp"

namespace letterbox::client::detail {

// The handler of an envelope reader: the text into memory, a file into a .part download.
// Nothing is final until the reader's finish() said the whole envelope verified. Handler is
// crypto::envelope_handler or crypto::group_envelope_handler, Header the header its keys()
// is asked with.
template <typename Handler, typename Header>
class envelope_receiver final : public Handler {
 public:
  envelope_receiver(crypto::envelope_keys keys, bool is_file, std::filesystem::path directory, const seen_store& seen)
      : keys_(keys), is_file_(is_file), directory_(std::move(directory)), seen_(seen) {}

  std::optional<crypto::envelope_keys> keys(const Header&) override { return keys_; }
  void metadata(const crypto::envelope_metadata& meta) override {
    if (seen_.has_replay(meta.replay)) {
      replayed = true;
      return;
    }
    if (!is_file_) return;
    try {
      prepare_download_directory(directory_);
      file.emplace(directory_, safe_file_name(meta.name));
    } catch (const std::exception& e) {  // config_error, filesystem_error: consumed, reported
      save_problem = std::string("cannot save the received file: ") + e.what();
    }
  }
  void body(crypto::bytes_view piece) override {
    if (replayed) return;
    if (!is_file_) {
      text.append(piece.begin(), piece.end());
      return;
    }
    if (!file || !save_problem.empty()) return;
    try {
      file->write(piece);
    } catch (const config_error& e) {  // e.g. disk full: keep consuming, report at the end
      save_problem = std::string("writing the received file failed: ") + e.what();
    }
  }

  bool replayed = false;
  std::string text;
  std::optional<download_file> file;
  std::string save_problem;

 private:
  crypto::envelope_keys keys_;
  bool is_file_;
  std::filesystem::path directory_;
  const seen_store& seen_;
};

// Consumes exactly `size` bytes of the envelope from link into reader (everything, verified or
// not), then fills result from what reader and receiver made of it: unverified (result.problem),
// a duplicate, a text or a file published from its .part (save_failed when that failed), with
// replay set to the envelope's replay ID when it verified. result.what stays as the caller set
// it (unverified) unless the envelope verified.
template <typename Reader, typename Receiver>
void read_envelope(connection& link, std::uint64_t size, Reader& reader, Receiver& receiver, bool is_file,
                   const progress_callback& progress, received_message& result, std::optional<replay_id>& replay) {
  protocol::byte_buffer chunk(std::min<std::uint64_t>(std::max<std::uint64_t>(size, 1), file_chunk_size));
  for (std::uint64_t done = 0; done < size;) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - done));
    link.read(std::span(chunk.data(), take));
    done += take;
    if (!reader.failed()) reader.feed(std::span(chunk.data(), take));
    if (progress && is_file) progress(done, size);
  }
  if (reader.failed() || !reader.finish()) {
    result.problem = std::string(crypto::to_string(reader.error()));
    return;  // the .part file goes with the receiver
  }
  if (receiver.replayed) {
    result.what = received_message::kind::duplicate;
    result.problem = "its replay ID was seen before (a replay or a redelivery)";
    return;
  }
  replay = reader.metadata()->replay;
  result.authenticated = true;
  if (!is_file) {
    result.what = received_message::kind::text;
    result.text = std::move(receiver.text);
    return;
  }
  result.file_name = reader.metadata()->name;
  try {
    if (!receiver.save_problem.empty()) throw config_error(receiver.save_problem);
    if (!receiver.file) throw config_error("no file was created");
    result.file_path = receiver.file->publish();
    result.what = received_message::kind::file;
  } catch (const config_error& e) {
    result.what = received_message::kind::save_failed;
    result.text = e.what();
  }
}

}  // namespace letterbox::client::detail
