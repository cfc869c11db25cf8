// The load generator's worker: one thread, one libevent loop, a share of the connections, each
// driven through connect, upgrade, the flavour's handshake and the mode's traffic.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/wsbench/histogram.h"
#include "codec/ws_frame.h"

namespace wsb::bench {

enum class Mode { Throughput, Idle, ConnRate };
enum class Flavour { Raw, SocketIO, Envelope };

struct Options {
  Mode mode = Mode::Throughput;
  Flavour flavour = Flavour::Raw;
  std::string host = "127.0.0.1";  // as written in the URL (Host header)
  sockaddr_in target{};
  std::string path = "/";
  uint32_t connections = 50;    // throughput and idle: held; connrate: handshakes in flight
  uint32_t depth = 8;           // messages in flight per connection
  uint32_t size = 64;           // payload bytes per message
  bool text = false;            // raw flavour: text frames instead of binary
  double duration = 10;         // seconds measured (throughput, connrate)
  double warmup = 2;            // seconds before measuring (throughput, connrate)
  double hold = 10;             // idle: seconds to hold once all are open
  double connect_timeout = 30;  // seconds for all connections to come up
  uint32_t ramp = 256;          // handshakes in flight while opening (idle, throughput)
  uint32_t threads = 1;
  uint32_t sources = 16;   // source addresses 127.0.0.2 .. 127.0.0.(1+sources); 0 = none
  std::string ready_file;  // idle: created once all connections are open
  bool json = false;
};

// What main reads from a worker while it runs (each written by its worker only).
struct WorkerCounters {
  std::atomic<uint64_t> round_trips{0};  // echoes received (throughput)
  std::atomic<uint64_t> payload_bytes{0};
  std::atomic<uint64_t> established{0};  // upgrades (and flavour handshakes) completed
  std::atomic<uint64_t> completed{0};    // connrate: upgrade-and-close cycles
  std::atomic<uint64_t> failed{0};       // connections that failed or were lost
  std::atomic<uint64_t> mismatched{0};   // messages that were not the expected echo
};

class Worker {
 public:
  // `first_conn` numbers this worker's connections globally (for source address spreading).
  Worker(const Options& options, uint32_t index, uint32_t conn_count, uint32_t first_conn,
         const std::atomic<bool>* measuring);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Thread body: opens the connections and runs the loop until stop().
  void run();
  // Thread-safe: closes every connection and ends run().
  void stop();

  WorkerCounters counters;
  // Valid after run() returned.
  const Histogram& histogram() const { return histogram_; }
  const std::string& firstError() const { return first_error_; }

 private:
  enum class State : uint8_t {
    Idle,        // slot without a socket
    Connecting,  // TCP connect in progress
    Upgrading,   // request sent, waiting for the 101
    SioOpen,     // waiting for Engine.IO OPEN (0{...})
    SioConnect,  // sent 40, waiting for 40{...}
    Running,     // flavour handshake done: traffic or hold
    Closing,     // connrate: close frame sent, waiting for the answer
  };

  struct Conn {
    Worker* worker = nullptr;
    uint32_t slot = 0;
    int fd = -1;
    State state = State::Idle;
    bool write_armed = false;
    event rev{};
    event wev{};
    ws::FrameParser<ws::Role::Client> parser;
    char key[25] = {};             // Sec-WebSocket-Key sent
    std::string http;              // the 101 response while it arrives
    std::vector<uint8_t> pending;  // output the socket did not take yet
    size_t pending_off = 0;
    // The message being received, compared to the expected echo as it arrives.
    ws::Opcode msg_op = ws::Opcode::Binary;
    bool msg_match = true;
    uint32_t msg_len = 0;
    uint8_t head_len = 0;
    uint8_t head[32] = {};
    // Send times of the messages in flight: a ring of `depth` entries in send_times_.
    uint32_t ring_head = 0;
    uint32_t in_flight = 0;
    uint32_t echoes_due = 0;  // replies to send once the current read is processed
  };

  struct Sink;

  static void onReadable(evutil_socket_t, short, void* arg);
  static void onWritable(evutil_socket_t, short, void* arg);
  static void onStop(evutil_socket_t, short, void* arg);

  void startMore();
  void startConnection(Conn& c);
  void handleRead(Conn& c);
  void handleWrite(Conn& c);
  bool handleUpgradeBytes(Conn& c, uint8_t*& data, size_t& len);
  bool handleFrames(Conn& c, uint8_t* data, size_t len);
  void onUpgraded(Conn& c);
  void onRunning(Conn& c);
  bool onMessage(Conn& c);
  bool onControl(Conn& c, ws::Opcode op, const uint8_t* payload, size_t len);
  void sendEchoes(Conn& c, uint32_t count);
  void sendText(Conn& c, std::string_view text);
  void sendControl(Conn& c, ws::Opcode op, const uint8_t* payload, size_t len);
  bool writeOut(Conn& c, const iovec* iov, int iovcnt);
  void armWrite(Conn& c, bool on);
  void closeConn(Conn& c);
  void fail(Conn& c, const std::string& why);
  void finishCycle(Conn& c);  // connrate: one upgrade-and-close done

  const Options& options_;
  uint32_t index_;
  uint32_t first_conn_;
  const std::atomic<bool>* measuring_;
  event_base* base_ = nullptr;
  event* stop_event_ = nullptr;
  bool stopping_ = false;

  std::unique_ptr<Conn[]> conns_;
  uint32_t conn_count_;
  uint32_t next_to_open_ = 0;  // throughput/idle: slots opened so far
  uint32_t handshaking_ = 0;   // connections between connect and Running
  uint64_t cycles_started_ = 0;
  bool in_start_more_ = false;  // startMore() is on the stack: failures must not recurse

  uint8_t mask_[4] = {};
  std::vector<uint8_t> frame_;  // one masked message frame, sent as is for every message
  std::string expect_;          // the echo payload expected back
  ws::Opcode expect_op_ = ws::Opcode::Binary;
  std::vector<uint64_t> send_times_;
  std::vector<iovec> iov_;
  std::vector<uint8_t> scratch_;  // read buffer shared by all connections
  uint64_t now_ = 0;              // ns, taken once per read event
  uint64_t batch_round_trips_ = 0;

  Histogram histogram_;
  std::string first_error_;
};

uint64_t monotonicNs();

}  // namespace wsb::bench
