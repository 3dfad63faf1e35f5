/* Load generator for bench/serve_load.py: gRPC unary calls over raw HTTP/2, in C.
 *
 * Why not a gRPC client library: on the two cores this benchmark shares with the
 * servers, a Python generator spends about two thirds of a bare server's CPU per call,
 * so at twice the sustainable rate it starves the server it measures. This one sends
 * pre-built frames and reads back only frame headers and the trailers' grpc-status,
 * a few microseconds per call. bench/serve_loadgen.py (the Python generator) has the
 * same interface and output, for comparison.
 *
 * HTTP/2 as gRPC uses it (RFC 9113, gRPC over HTTP/2): our SETTINGS set the HPACK
 * table size to 0, so the server's header blocks use no dynamic table and need no
 * state to decode; grpc core sends plain (not Huffman) literals, and a block it cannot
 * read is counted as status "UNDECODED" rather than guessed. Flow control: the
 * receive windows are opened wide and topped up; the connection's send window is kept.
 *
 * Modes: closed (`concurrency` callers, each sending when its last call returned) and
 * open (calls start on a fixed schedule, latency from the scheduled start).
 * Output: one JSON object {elapsed, cpu_s, offsets, latencies, lags, codes}.
 *
 *   cc -O2 -o loadgen loadgen.c
 *   loadgen --target 127.0.0.1:50051 --method /pkg.Svc/M --requests FILE [options]
 * FILE: u32 count, then per request u32 length and the serialised message (little endian).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 64
#define MAX_PHASES 16
#define RECV_WINDOW 0x7fffffff

static const char *CODE_NAMES[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                   "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                   "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                   "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
enum { CODE_PENDING = -1, CODE_UNDECODED = 17, CODE_RESET = 18, CODE_NO_STATUS = 19 };

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(2);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* --- growable byte buffer ---------------------------------------------------------- */
typedef struct { unsigned char *p; size_t len, cap, off; } buf_t;

static void buf_put(buf_t *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void frame_header(buf_t *b, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid) {
    unsigned char h[9] = {len >> 16, len >> 8, len, type, flags, sid >> 24, sid >> 16, sid >> 8, sid};
    buf_put(b, h, 9);
}

/* --- calls ------------------------------------------------------------------------- */
typedef struct {
    double scheduled, sent, done;  /* seconds since start */
    double lag;
    int code;
    int conn;
    uint32_t sid;
} call_t;

static call_t *calls;
static size_t n_calls, cap_calls;

static size_t new_call(double scheduled, double lag) {
    if (n_calls == cap_calls) {
        cap_calls = cap_calls ? cap_calls * 2 : 65536;
        calls = realloc(calls, cap_calls * sizeof(call_t));
        if (!calls) die("out of memory");
    }
    calls[n_calls] = (call_t){scheduled, 0, 0, lag, CODE_PENDING, -1, 0};
    return n_calls++;
}

/* --- connections ------------------------------------------------------------------- */
typedef struct {
    int fd;
    int alive;
    buf_t out, in;
    uint32_t next_sid;
    int64_t send_window;      /* connection-level, from the server's WINDOW_UPDATEs */
    uint64_t received;        /* DATA bytes since our last WINDOW_UPDATE */
    uint32_t max_streams, open_streams;
    size_t *stream_call;      /* index (sid - 1) / 2 -> call */
    size_t n_streams, cap_streams;
    size_t *waiting;          /* calls not yet sent: stream limit or send window */
    size_t n_waiting, head_waiting, cap_waiting;
    buf_t block;              /* HEADERS + CONTINUATION being assembled */
    uint32_t block_sid;
    int block_end_stream;
} conn_t;

static conn_t conns[MAX_CONN];
static int n_conns;

/* request bodies, already framed as gRPC messages (5-byte prefix) */
static unsigned char **bodies;
static uint32_t *body_len;
static uint32_t n_bodies;
static buf_t header_block;   /* the same for every call */

/* in-flight calls in send order: the timeout check looks at the oldest only */
static size_t *inflight;
static size_t if_head, if_tail, if_cap;
static double timeout_s = 2.0;
static size_t outstanding;   /* calls started and not finished */

static void inflight_push(size_t c) {
    if (if_tail - if_head == if_cap) {
        size_t ncap = if_cap ? if_cap * 2 : 65536;
        size_t *n = malloc(ncap * sizeof(size_t));
        if (!n) die("out of memory");
        for (size_t i = if_head; i < if_tail; i++) n[i - if_head] = inflight[i % if_cap];
        free(inflight);
        inflight = n;
        if_tail -= if_head;
        if_head = 0;
        if_cap = ncap;
    }
    inflight[if_tail++ % if_cap] = c;
}

static void (*on_finish)(size_t call, double now);

/* the reply of one call, kept (the balancing call's: which process answered) */
static int capture_conn = -1;
static uint32_t capture_sid;
static buf_t captured;

static void finish(size_t c, int code, double now) {
    call_t *k = &calls[c];
    if (k->code != CODE_PENDING) return;
    k->code = code;
    k->done = now;
    outstanding--;
    if (k->conn >= 0 && k->sid) conns[k->conn].open_streams--;
    if (on_finish) on_finish(c, now);
}

static void send_frames(conn_t *cn, int ci, size_t c, double now, const buf_t *hb, const unsigned char *body,
                        uint32_t len) {
    call_t *k = &calls[c];
    uint32_t sid = cn->next_sid;
    cn->next_sid += 2;
    size_t slot = (sid - 1) / 2;
    if (slot >= cn->cap_streams) {
        cn->cap_streams = (slot + 1) * 2;
        cn->stream_call = realloc(cn->stream_call, cn->cap_streams * sizeof(size_t));
        if (!cn->stream_call) die("out of memory");
    }
    cn->stream_call[slot] = c;
    cn->n_streams = slot + 1;
    frame_header(&cn->out, hb->len, 1, 0x4, sid);            /* HEADERS, END_HEADERS */
    buf_put(&cn->out, hb->p, hb->len);
    frame_header(&cn->out, len, 0, 0x1, sid);                /* DATA, END_STREAM */
    buf_put(&cn->out, body, len);
    cn->send_window -= len;
    cn->open_streams++;
    k->sid = sid;
    k->conn = ci;
    k->sent = now;
    inflight_push(c);
}

static void send_now(conn_t *cn, int ci, size_t c, double now) {
    uint32_t b = (uint32_t)(c % n_bodies);
    send_frames(cn, ci, c, now, &header_block, bodies[b], body_len[b]);
}

static void start_call(size_t c, int ci, double now) {
    conn_t *cn = &conns[ci];
    calls[c].conn = ci;
    outstanding++;
    if (!cn->alive) {
        finish(c, 14, now);  /* UNAVAILABLE: the connection is gone */
        return;
    }
    uint32_t b = (uint32_t)(c % n_bodies);
    if (cn->n_waiting == 0 && cn->open_streams < cn->max_streams && cn->send_window >= body_len[b]) {
        send_now(cn, ci, c, now);
        return;
    }
    if (cn->head_waiting + cn->n_waiting == cn->cap_waiting) {
        cn->cap_waiting = cn->cap_waiting ? cn->cap_waiting * 2 : 4096;
        cn->waiting = realloc(cn->waiting, cn->cap_waiting * sizeof(size_t));
        if (!cn->waiting) die("out of memory");
    }
    cn->waiting[cn->head_waiting + cn->n_waiting++] = c;
}

static void send_waiting(conn_t *cn, int ci, double now) {
    while (cn->n_waiting && cn->open_streams < cn->max_streams) {
        size_t c = cn->waiting[cn->head_waiting];
        if (cn->send_window < body_len[c % n_bodies]) break;
        cn->head_waiting++;
        cn->n_waiting--;
        if (calls[c].code == CODE_PENDING) send_now(cn, ci, c, now);
    }
    if (cn->n_waiting == 0) cn->head_waiting = 0;
}

static void conn_close(int ci, double now) {
    conn_t *cn = &conns[ci];
    if (!cn->alive) return;
    cn->alive = 0;
    close(cn->fd);
    for (size_t s = 0; s < cn->n_streams; s++) {
        size_t c = cn->stream_call[s];
        if (c < n_calls && calls[c].conn == ci && calls[c].code == CODE_PENDING) finish(c, 14, now);
    }
    for (size_t w = 0; w < cn->n_waiting; w++) finish(cn->waiting[cn->head_waiting + w], 14, now);
    cn->n_waiting = 0;
}

static int conn_flush(conn_t *cn, int ci, double now) {
    while (cn->out.off < cn->out.len) {
        ssize_t n = send(cn->fd, cn->out.p + cn->out.off, cn->out.len - cn->out.off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            conn_close(ci, now);
            return -1;
        }
        cn->out.off += (size_t)n;
    }
    cn->out.len = cn->out.off = 0;
    return 0;
}

/* --- HPACK, without a dynamic table ------------------------------------------------ */
static int hpack_int(const unsigned char **p, const unsigned char *end, int prefix, uint64_t *v) {
    if (*p >= end) return -1;
    uint64_t max = (1u << prefix) - 1, x = **p & max;
    (*p)++;
    if (x < max) { *v = x; return 0; }
    for (int shift = 0; *p < end && shift < 56; shift += 7) {
        unsigned char b = *(*p)++;
        x += (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

static int hpack_str(const unsigned char **p, const unsigned char *end, const unsigned char **s, uint64_t *n) {
    if (*p >= end) return -1;
    int huffman = **p & 0x80;
    if (hpack_int(p, end, 7, n) < 0 || *n > (uint64_t)(end - *p)) return -1;
    *s = *p;
    *p += *n;
    return huffman ? -2 : 0;
}

/* grpc-status of a header block: 0..16, CODE_NO_STATUS, or CODE_UNDECODED */
static int block_status(const unsigned char *p, size_t len) {
    const unsigned char *end = p + len;
    int status = CODE_NO_STATUS;
    while (p < end) {
        unsigned char b = *p;
        uint64_t idx, nlen, vlen;
        const unsigned char *name = NULL, *value;
        if (b & 0x80) {                       /* indexed: static table only (no dynamic one) */
            if (hpack_int(&p, end, 7, &idx) < 0 || idx == 0 || idx > 61) return CODE_UNDECODED;
            continue;
        }
        if ((b & 0xe0) == 0x20) {             /* table size update */
            if (hpack_int(&p, end, 5, &idx) < 0) return CODE_UNDECODED;
            continue;
        }
        if (hpack_int(&p, end, (b & 0x40) ? 6 : 4, &idx) < 0) return CODE_UNDECODED;
        if (idx == 0 && hpack_str(&p, end, &name, &nlen) != 0) return CODE_UNDECODED;
        if (idx > 61) return CODE_UNDECODED;
        if (hpack_str(&p, end, &value, &vlen) != 0) return CODE_UNDECODED;
        if (name && nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
            int v = 0;
            for (uint64_t i = 0; i < vlen; i++) {
                if (value[i] < '0' || value[i] > '9') return CODE_UNDECODED;
                v = v * 10 + (value[i] - '0');
            }
            status = (vlen && v <= 16) ? v : 2;  /* unknown code: UNKNOWN, as grpc does */
        }
    }
    return status;
}

static size_t call_of(conn_t *cn, int ci, uint32_t sid) {
    if (!(sid & 1) || (sid - 1) / 2 >= cn->n_streams) return (size_t)-1;
    size_t c = cn->stream_call[(sid - 1) / 2];
    return (calls[c].conn == ci && calls[c].sid == sid) ? c : (size_t)-1;
}

static void on_block(conn_t *cn, int ci, double now) {
    if (!cn->block_end_stream) return;  /* response headers: the status comes in the trailers */
    size_t c = call_of(cn, ci, cn->block_sid);
    if (c != (size_t)-1) finish(c, block_status(cn->block.p, cn->block.len), now);
}

static void on_frame(conn_t *cn, int ci, uint8_t type, uint8_t flags, uint32_t sid, const unsigned char *p,
                     uint32_t len, double now) {
    switch (type) {
    case 0: /* DATA: the response message, not parsed; keep the window open */
        if (ci == capture_conn && sid == capture_sid) buf_put(&captured, p, len);
        cn->received += len;
        if (cn->received > (1u << 24)) {
            unsigned char w[4] = {cn->received >> 24, cn->received >> 16, cn->received >> 8, cn->received};
            frame_header(&cn->out, 4, 8, 0, 0);
            buf_put(&cn->out, w, 4);
            cn->received = 0;
        }
        if (flags & 0x1) {
            size_t c = call_of(cn, ci, sid);
            if (c != (size_t)-1) finish(c, CODE_NO_STATUS, now);
        }
        break;
    case 1: /* HEADERS */
    case 9: /* CONTINUATION */
        if (type == 1) {
            uint32_t pad = 0, skip = 0;
            if (flags & 0x8) { if (!len) break; pad = p[0]; skip = 1; }
            if (flags & 0x20) skip += 5;
            if (skip + pad > len) break;
            cn->block.len = 0;
            cn->block_sid = sid;
            cn->block_end_stream = flags & 0x1;
            buf_put(&cn->block, p + skip, len - skip - pad);
        } else {
            buf_put(&cn->block, p, len);
        }
        if (flags & 0x4) on_block(cn, ci, now);
        break;
    case 3: { /* RST_STREAM: REFUSED_STREAM -> UNAVAILABLE, CANCEL -> CANCELLED, others INTERNAL */
        size_t c = call_of(cn, ci, sid);
        uint32_t e = len >= 4 ? (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3] : 0;
        if (c != (size_t)-1) finish(c, e == 7 ? 14 : e == 8 ? 1 : e == 0 ? CODE_RESET : 13, now);
        break;
    }
    case 4: /* SETTINGS */
        if (flags & 0x1) break;
        for (uint32_t i = 0; i + 6 <= len; i += 6) {
            uint16_t id = (uint16_t)(p[i] << 8 | p[i + 1]);
            uint32_t v = (uint32_t)p[i + 2] << 24 | p[i + 3] << 16 | p[i + 4] << 8 | p[i + 5];
            if (id == 3) cn->max_streams = v;
        }
        frame_header(&cn->out, 0, 4, 0x1, 0);
        break;
    case 6: /* PING: answer at once (grpc core measures bandwidth-delay with them) */
        if (!(flags & 0x1) && len == 8) {
            frame_header(&cn->out, 8, 6, 0x1, 0);
            buf_put(&cn->out, p, 8);
        }
        break;
    case 7: /* GOAWAY: calls above last-stream-id were never seen: fail them, stop using it */
        conn_close(ci, now);
        break;
    case 8: /* WINDOW_UPDATE */
        if (sid == 0 && len == 4) cn->send_window += ((uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]) & 0x7fffffff;
        break;
    default:
        break;
    }
}

static void conn_read(int ci, double now) {
    conn_t *cn = &conns[ci];
    for (;;) {
        if (cn->in.cap - cn->in.len < 65536) {
            cn->in.cap = cn->in.len + 262144;
            cn->in.p = realloc(cn->in.p, cn->in.cap);
            if (!cn->in.p) die("out of memory");
        }
        ssize_t n = recv(cn->fd, cn->in.p + cn->in.len, cn->in.cap - cn->in.len, 0);
        if (n == 0) { conn_close(ci, now); return; }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            conn_close(ci, now);
            return;
        }
        cn->in.len += (size_t)n;
        if ((size_t)n < 65536) break;
    }
    size_t off = 0;
    while (cn->in.len - off >= 9) {
        unsigned char *h = cn->in.p + off;
        uint32_t len = (uint32_t)h[0] << 16 | h[1] << 8 | h[2];
        if (cn->in.len - off < 9 + (size_t)len) break;
        uint32_t sid = ((uint32_t)h[5] << 24 | h[6] << 16 | h[7] << 8 | h[8]) & 0x7fffffff;
        on_frame(cn, ci, h[3], h[4], sid, h + 9, len, now);
        if (!cn->alive) return;
        off += 9 + len;
    }
    memmove(cn->in.p, cn->in.p + off, cn->in.len - off);
    cn->in.len -= off;
    send_waiting(cn, ci, now);
}

static void conn_open(int ci, const char *host, int port) {
    conn_t *cn = &conns[ci];
    memset(cn, 0, sizeof *cn);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("--target: an IPv4 address and a port, host:port");
    cn->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (cn->fd < 0 || connect(cn->fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(cn->fd, F_SETFL, fcntl(cn->fd, F_GETFL) | O_NONBLOCK);
    cn->alive = 1;
    cn->next_sid = 1;
    cn->send_window = 65535;
    cn->max_streams = 0xffffffffu;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    buf_put(&cn->out, preface, sizeof preface - 1);
    /* HEADER_TABLE_SIZE 0, ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 2^31-1 */
    unsigned char s[18] = {0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff};
    frame_header(&cn->out, sizeof s, 4, 0, 0);
    buf_put(&cn->out, s, sizeof s);
    uint32_t inc = RECV_WINDOW - 65535;
    unsigned char w[4] = {inc >> 24, inc >> 16, inc >> 8, inc};
    frame_header(&cn->out, 4, 8, 0, 0);
    buf_put(&cn->out, w, 4);
}

/* --- the loop ---------------------------------------------------------------------- */
/* Flush, wait for input until `until` (absolute, seconds since start), read, expire. */
static void step(double t0, double until) {
    struct pollfd fds[MAX_CONN];
    double now = now_s() - t0;
    for (int i = 0; i < n_conns; i++) {
        conn_t *cn = &conns[i];
        if (cn->alive) conn_flush(cn, i, now);
        fds[i].fd = cn->alive ? cn->fd : -1;
        fds[i].events = POLLIN | (cn->alive && cn->out.len > cn->out.off ? POLLOUT : 0);
        fds[i].revents = 0;
    }
    double wait = until - now;
    if (wait < 0) wait = 0;
    if (wait > 0.05) wait = 0.05;
    struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
    int r = ppoll(fds, (nfds_t)n_conns, &ts, NULL);
    if (r < 0 && errno != EINTR) die("poll");
    now = now_s() - t0;
    for (int i = 0; r > 0 && i < n_conns; i++) {
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) conn_read(i, now);
        if (conns[i].alive && (fds[i].revents & POLLOUT)) conn_flush(&conns[i], i, now);
    }
    /* calls past their deadline: DEADLINE_EXCEEDED, and the stream is cancelled */
    while (if_head < if_tail) {
        size_t c = inflight[if_head % if_cap];
        call_t *k = &calls[c];
        if (k->code != CODE_PENDING) { if_head++; continue; }
        if (now - k->sent < timeout_s) break;
        if_head++;
        conn_t *cn = &conns[k->conn];
        if (cn->alive) {
            unsigned char e[4] = {0, 0, 0, 8};
            frame_header(&cn->out, 4, 3, 0, k->sid);
            buf_put(&cn->out, e, 4);
        }
        finish(c, 4, now);
    }
}

/* closed loop: a finished call starts the next one on the same connection (a caller
   keeps its connection, so a slower server process does not collect more callers) */
static double closed_end;
static void closed_on_finish(size_t c, double now) {
    int ci = calls[c].conn;
    if (now < closed_end && ci >= 0) {
        size_t k = new_call(now, 0);
        start_call(k, ci, now);
    }
}

static void load_requests(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("--requests");
    if (fread(&n_bodies, 4, 1, f) != 1 || n_bodies == 0) die("--requests: empty or truncated file");
    bodies = calloc(n_bodies, sizeof *bodies);
    body_len = calloc(n_bodies, sizeof *body_len);
    for (uint32_t i = 0; i < n_bodies; i++) {
        uint32_t n;
        if (fread(&n, 4, 1, f) != 1) die("--requests: truncated file");
        body_len[i] = n + 5;
        bodies[i] = malloc(n + 5);
        bodies[i][0] = 0;
        bodies[i][1] = n >> 24; bodies[i][2] = n >> 16; bodies[i][3] = n >> 8; bodies[i][4] = n;
        if (n && fread(bodies[i] + 5, 1, n, f) != n) die("--requests: truncated file");
    }
    fclose(f);
}

static void lit(buf_t *b, unsigned char first, const char *name, const char *value) {
    unsigned char c = first;
    buf_put(b, &c, 1);
    if (name) { c = (unsigned char)strlen(name); buf_put(b, &c, 1); buf_put(b, name, strlen(name)); }
    c = (unsigned char)strlen(value);
    buf_put(b, &c, 1);
    buf_put(b, value, strlen(value));
}

static void step(double t0, double until);

/* Which process answers connection `ci`: field 1 (a varint: ServerStats.pid) of the reply
   to `hb`'s method, called with an empty message. 0 when the reply has none. */
static uint64_t ask_pid(int ci, const buf_t *hb, double t0) {
    static const unsigned char empty[5] = {0, 0, 0, 0, 0};
    size_t k = new_call(now_s() - t0, 0);
    outstanding++;
    captured.len = 0;
    capture_conn = ci;
    capture_sid = conns[ci].next_sid;
    send_frames(&conns[ci], ci, k, now_s() - t0, hb, empty, 5);
    while (calls[k].code == CODE_PENDING) step(t0, now_s() - t0 + 0.05);
    capture_conn = -1;
    if (calls[k].code != 0) {
        fprintf(stderr, "loadgen: the balancing call failed: %s\n",
                calls[k].code < 17 ? CODE_NAMES[calls[k].code] : "no grpc-status in the answer");
        exit(1);
    }
    const unsigned char *p = captured.p + 5, *end = captured.p + captured.len;
    while (captured.len > 5 && p < end) {  /* protobuf: tag varint, then the field */
        uint64_t tag = 0, v = 0;
        for (int shift = 0; p < end && shift < 64; shift += 7) { tag |= (uint64_t)(*p & 0x7f) << shift; if (!(*p++ & 0x80)) break; }
        if ((tag & 7) != 0) break;  /* pid comes first, as a varint; anything else: give up */
        for (int shift = 0; p < end && shift < 64; shift += 7) { v |= (uint64_t)(*p & 0x7f) << shift; if (!(*p++ & 0x80)) break; }
        if (tag >> 3 == 1) return v;
    }
    return 0;
}

/* A call's header block (the same for every call of a method): static-table and
   literal fields only, nothing for the server's HPACK table to remember. */
static void request_headers(buf_t *b, const char *method, const char *target, const char *grpc_timeout) {
    static const unsigned char post_http[2] = {0x83, 0x86};  /* :method POST, :scheme http */
    buf_put(b, post_http, 2);
    lit(b, 0x04, NULL, method);  /* :path, literal without indexing */
    lit(b, 0x01, NULL, target);  /* :authority */
    lit(b, 0x00, "content-type", "application/grpc");
    lit(b, 0x00, "te", "trailers");
    if (grpc_timeout) lit(b, 0x00, "grpc-timeout", grpc_timeout);
}

static void usage(void) {
    fputs("usage: loadgen --target HOST:PORT --method /pkg.Service/Method --requests FILE\n"
          "  [--mode closed|open] [--concurrency N] [--rate R] [--duration S] [--channels N]\n"
          "  [--timeout S] [--phases RATE:SECONDS,...] [--stop-file PATH]\n"
          "  [--balance-method /pkg.Service/Stats --workers N]: spread the connections evenly over N\n"
          "    server processes sharing the port (SO_REUSEPORT hashes connections to them at random);\n"
          "    the method's reply carries the process id in field 1\n", stderr);
    exit(2);
}

int main(int argc, char **argv) {
    const char *target = NULL, *method = NULL, *requests = NULL, *mode = "closed", *phases_s = NULL, *stop = NULL;
    const char *balance = NULL;
    int concurrency = 16, channels = 4, workers = 1;
    double rate = 1000, duration = 3;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *v = strchr(a, '=');
        if (v) *v++ = 0; else if (i + 1 < argc) v = argv[++i]; else usage();
        if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--method")) method = v;
        else if (!strcmp(a, "--requests")) requests = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--concurrency")) concurrency = atoi(v);
        else if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--channels")) channels = atoi(v);
        else if (!strcmp(a, "--timeout")) timeout_s = atof(v);
        else if (!strcmp(a, "--phases")) phases_s = v;
        else if (!strcmp(a, "--stop-file")) stop = v;
        else if (!strcmp(a, "--balance-method")) balance = v;
        else if (!strcmp(a, "--workers")) workers = atoi(v);
        else if (!strcmp(a, "--rpc")) continue;  /* the Python generator's; the file holds one RPC's requests */
        else usage();
    }
    if (!target || !method || !requests || channels < 1 || channels > MAX_CONN || concurrency < 1) usage();
    signal(SIGPIPE, SIG_IGN);
    load_requests(requests);
    char host[256];
    const char *colon = strrchr(target, ':');
    if (!colon || colon - target >= (long)sizeof host) usage();
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = 0;
    int port = atoi(colon + 1);

    char grpc_timeout[32];
    snprintf(grpc_timeout, sizeof grpc_timeout, "%ldm", (long)(timeout_s * 1000));
    request_headers(&header_block, method, target, grpc_timeout);

    double t0 = now_s();
    uint64_t pids[MAX_CONN] = {0};
    if (balance && workers > 1) {
        /* keep channels / workers connections to each process; close the others */
        if (channels % workers) usage();
        buf_t hb = {0};
        request_headers(&hb, balance, target, NULL);
        uint64_t seen[MAX_CONN];
        int per[MAX_CONN] = {0}, n_seen = 0, kept = 0, tries = 0;
        while (kept < channels) {
            if (++tries > 40 * channels) {
                fprintf(stderr, "loadgen: %d connections did not reach %d processes evenly (%d seen)\n", tries - 1,
                        workers, n_seen);
                return 1;
            }
            n_conns = kept + 1;
            conn_open(kept, host, port);
            uint64_t pid = ask_pid(kept, &hb, t0);
            int w = 0;
            while (w < n_seen && seen[w] != pid) w++;
            if (w == n_seen && n_seen < workers) seen[n_seen++] = pid;
            if (w < n_seen && per[w] < channels / workers) {
                per[w]++;
                pids[kept++] = pid;
            } else {
                conn_close(kept, now_s() - t0);
            }
        }
    } else {
        n_conns = channels;
        for (int i = 0; i < n_conns; i++) conn_open(i, host, port);
    }

    /* connect every connection with one call before the clock starts: any answer from the
       service will do (another generator may already overload it: RESOURCE_EXHAUSTED) */
    for (int i = 0; i < n_conns; i++) {
        size_t k = new_call(now_s() - t0, 0);
        start_call(k, i, now_s() - t0);
        while (calls[k].code == CODE_PENDING) step(t0, now_s() - t0 + 0.05);
        int code = calls[k].code;
        if (code == 1 || code == 4 || code == 12 || code == 14 || code > 16) {
            fprintf(stderr, "loadgen: warm-up call on connection %d to %s failed: %s\n", i, method,
                    code < 17 ? CODE_NAMES[code] : "no grpc-status in the answer");
            return 1;
        }
    }
    n_calls = 0;  /* warm-up calls are not counted */
    if_head = if_tail = 0;

    double start = now_s(), cpu0 = cpu_s();
    double end_t;
    if (!strcmp(mode, "closed")) {
        closed_end = duration;
        on_finish = closed_on_finish;
        for (int i = 0; i < concurrency; i++) start_call(new_call(0, 0), i % n_conns, 0);
        while (outstanding > 0) step(start, now_s() - start + 0.05);
        end_t = now_s() - start;
    } else if (!strcmp(mode, "open")) {
        double prate[MAX_PHASES], pend[MAX_PHASES];
        int np = 0;
        if (phases_s) {
            char *s = strdup(phases_s), *tok, *save;
            double acc = 0;
            for (tok = strtok_r(s, ",", &save); tok && np < MAX_PHASES; tok = strtok_r(NULL, ",", &save)) {
                double r, d;
                if (sscanf(tok, "%lf:%lf", &r, &d) != 2 || r <= 0) usage();
                acc += d;
                prate[np] = r;
                pend[np++] = acc;
            }
        } else {
            prate[0] = rate;
            pend[np++] = duration;
        }
        if (np == 0 || prate[0] <= 0) usage();
        double end = pend[np - 1], nxt = 0, next_check = 0;
        int k = 0;
        size_t i = 0;
        for (;;) {
            double now = now_s() - start;
            if (now >= end) break;
            if (stop && now >= next_check) {
                next_check = now + 0.2;
                if (access(stop, F_OK) == 0) break;
            }
            while (nxt <= now && nxt < end) {
                while (nxt >= pend[k] && k < np - 1) k++;
                start_call(new_call(nxt, now - nxt), (int)(i++ % (size_t)n_conns), now);
                nxt += 1.0 / prate[k];
            }
            step(start, nxt < end ? nxt : end);
        }
        double drain = now_s() - start + timeout_s + 5;
        while (outstanding > 0 && now_s() - start < drain) step(start, now_s() - start + 0.05);
        end_t = now_s() - start;
    } else {
        usage();
        return 2;
    }
    double cpu = cpu_s() - cpu0;

    /* JSON, as bench/serve_loadgen.py writes it */
    printf("{\"elapsed\": %.6f, \"cpu_s\": %.6f, \"pids\": [", end_t, cpu);
    for (int j = 0; j < n_conns; j++) printf(j ? ",%llu" : "%llu", (unsigned long long)pids[j]);
    printf("], \"offsets\": [");
    for (size_t j = 0; j < n_calls; j++) printf(j ? ",%.6f" : "%.6f", calls[j].scheduled);
    printf("], \"latencies\": [");
    for (size_t j = 0; j < n_calls; j++) {
        double lat = (calls[j].code == CODE_PENDING ? end_t : calls[j].done) - calls[j].scheduled;
        printf(j ? ",%.7f" : "%.7f", lat);
    }
    printf("], \"lags\": [");
    for (size_t j = 0; j < n_calls; j++) printf(j ? ",%.7f" : "%.7f", calls[j].lag);
    printf("], \"codes\": [");
    for (size_t j = 0; j < n_calls; j++) {
        int code = calls[j].code;
        const char *name = code >= 0 && code < 17 ? CODE_NAMES[code]
                           : code == CODE_UNDECODED ? "UNDECODED" : code == CODE_RESET ? "RST_STREAM"
                           : code == CODE_PENDING ? "UNFINISHED" : "NO_STATUS";
        printf(j ? ",\"%s\"" : "\"%s\"", name);
    }
    printf("]}\n");
    return 0;
}
