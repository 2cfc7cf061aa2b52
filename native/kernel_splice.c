/*
 * A CONNECT tunnel's bytes moved by the kernel: splice(2) from one TCP socket into a pipe and from the pipe into the
 * other socket, so the payload never enters user space. This is what Go's io.Copy between two TCP connections does,
 * and why the Go proxy spent about half of getaway's CPU per GiB on tunnel bulk (docs/performance.md). Node has no
 * API for splice(2) and no maintained npm package offers it for sockets Node owns, hence this file.
 *
 * How it shares the sockets with Node: the JavaScript side (src/tunnel/kernel-splice.ts) stops Node's reads on both
 * sockets and hands over only sockets with nothing queued for writing, so Node neither reads nor writes them while
 * this file does. The descriptors are watched on an epoll set of this file's own, which one uv_poll handle watches
 * on Node's loop: no thread, no locks. Why not a uv_poll per descriptor, as the first version had: uv_poll_init
 * checks each descriptor with an epoll_ctl ADD and DEL and sets it non-blocking with an ioctl, and every change of
 * what a poll waits for is a DEL and an ADD on libuv's set. On this VM a system call costs more than the work of
 * most (the hypervisor's pvm_irq_enable was a fifth of the CPU of a CONNECT-setup load), and a short tunnel made
 * 7 epoll_ctl and 2 ioctl calls of ours; here it makes an ADD and a DEL per descriptor and a MOD per change.
 * Level-triggered, as uv_poll is, so a direction that stops at its turn's bound is called again while its source
 * has more. Registrations carry a slot number and generation, not a pointer: an event for a relay that finished
 * earlier in the same batch (its finish callback may stop others) finds its slot reused or empty and is dropped.
 * A descriptor must stay open for as long as it is registered here, or a later connection given the same number
 * could be mistaken for this one's: for a tunnel, the JavaScript side takes the handles away from its sockets
 * until the finish (so even a stray destroy() cannot close them) and closes them only after stop() returned or the
 * finish callback came; a transfer, whose client socket Node goes on reading, works on duplicates
 * (F_DUPFD_CLOEXEC) that it closes itself, after taking them out of the set.
 *
 * Per direction: bytes the JavaScript side already held for it (the CONNECT head, bytes its stream had buffered)
 * are written first, then one pipe-full is spliced in, all of it spliced out, and so on. A source's EOF becomes
 * shutdown(SHUT_WR) on the other socket once its pipe is empty (TCP half-close); the tunnel finishes when both
 * directions have, or at the first error. Pipes come from a small process-wide pool and go back to it whenever a
 * direction's pipe is empty, so an idle tunnel holds no pipe: only its two sockets.
 *
 * The same machinery moves one response body of known length (transfer()): one direction only, exactly `length`
 * bytes from the origin to the client, no FIN passed on, and both sockets left open for Node to go on with
 * (the origin connection back to its pool, the client's to its next request). Bytes past the length stay unread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>

/*
 * Bytes one splice into a pipe may take; the pipe is grown to this where the system allows (fcntl F_SETPIPE_SZ, up
 * to /proc/sys/fs/pipe-max-size without privileges). bench:pair bulk, 1 MiB against 256 KiB pipes: 0.67 of the CPU
 * per MiB. A pipe holds pages only while bytes wait in it; its size counts against the user's pipe-user-pages-soft,
 * past which the kernel refuses to grow pipes and the copy goes on in smaller ones.
 */
#define PIPE_BYTES (1024 * 1024)
/* How much one event moves in one direction before it lets the loop serve others. */
#define TURN_BYTES (1024 * 1024)
/* Empty pipes kept for the next busy tunnel: few, since each counts in full against the user's pipe allowance. */
#define POOL_CAPACITY 16

typedef struct {
  int read_end;
  int write_end;
} pipe_pair;

static pipe_pair pool[POOL_CAPACITY];
static int pooled = 0;

static int take_pipe(pipe_pair *pipe) {
  if (pooled > 0) {
    *pipe = pool[--pooled];
    return 0;
  }
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return errno;
  /* Larger pipes mean fewer splices per MiB; where the limit is lower the default (64 KiB) serves as well. */
  (void)fcntl(ends[1], F_SETPIPE_SZ, PIPE_BYTES);
  pipe->read_end = ends[0];
  pipe->write_end = ends[1];
  return 0;
}

/* An empty pipe goes back to the pool; one still holding bytes (a tunnel cut short) is closed with them. */
static void give_back_pipe(pipe_pair *pipe, size_t held) {
  if (pipe->read_end < 0) return;
  if (held == 0 && pooled < POOL_CAPACITY) {
    pool[pooled++] = *pipe;
  } else {
    close(pipe->read_end);
    close(pipe->write_end);
  }
  pipe->read_end = pipe->write_end = -1;
}

typedef struct {
  pipe_pair pipe;     /* -1 ends while none is held */
  size_t in_pipe;     /* bytes spliced in and not yet out */
  char *early;        /* bytes to write before any splice (owned copy), or NULL */
  size_t early_length;
  size_t early_written;
  uint64_t written;   /* bytes delivered to the destination */
  uint64_t read;      /* bytes taken from the source */
  int source_ended;   /* the source sent FIN */
  int shut;           /* FIN passed on (or, with a limit, the limit reached): this direction is done */
  int limited;        /* a transfer: read exactly `limit` bytes, then stop without passing on a FIN */
  uint64_t limit;
  int drained;        /* the last read took all the socket had */
  int wants_read;
  int wants_write;
} direction;

typedef struct relay {
  int fds[2];
  direction directions[2]; /* [0] a to b, [1] b to a */
  int events[2];           /* what each descriptor is registered for (EPOLLIN / EPOLLOUT); 0: not in the set */
  uint32_t slot;           /* index in `slots` while running */
  int finished;
  int error;               /* errno that ended it, 0 when both directions finished */
  int owns_fds;            /* the descriptors are duplicates of this relay's own, closed at the finish */
  int references;          /* the JavaScript handle's, and the slot's until the finish */
  napi_env env;
  napi_ref receiver;
} relay;

static napi_env owner_env = NULL;
static napi_ref finish_callback = NULL;
static napi_async_context async_context = NULL;

/* The process's epoll set for every relay's descriptors, and the one libuv poll that watches it. */
static int epoll_fd = -1;
static uv_poll_t epoll_watch;
static size_t running = 0; /* relays not finished: the watch keeps the loop alive only while there are some */

/*
 * Running relays by slot. An event's data is (generation << 32) | (slot << 1) | side; a slot's generation changes
 * whenever it is freed, so events queued for a relay that finished in the meantime match nothing. Free slots are
 * chained through `next_free`.
 */
typedef struct {
  relay *relay;
  uint32_t generation;
  uint32_t next_free;
} slot_entry;

#define NO_SLOT UINT32_MAX
static slot_entry *slots = NULL;
static uint32_t slot_capacity = 0;
static uint32_t first_free = NO_SLOT;

static int take_slot(relay *r) {
  if (first_free == NO_SLOT) {
    uint32_t capacity = slot_capacity == 0 ? 64 : slot_capacity * 2;
    slot_entry *grown = realloc(slots, capacity * sizeof *slots);
    if (grown == NULL) return ENOMEM;
    slots = grown;
    for (uint32_t i = slot_capacity; i < capacity; i++) {
      slots[i].relay = NULL;
      slots[i].generation = 0;
      slots[i].next_free = i + 1 < capacity ? i + 1 : NO_SLOT;
    }
    first_free = slot_capacity;
    slot_capacity = capacity;
  }
  r->slot = first_free;
  first_free = slots[r->slot].next_free;
  slots[r->slot].relay = r;
  return 0;
}

static void free_slot(relay *r) {
  slot_entry *entry = &slots[r->slot];
  entry->relay = NULL;
  entry->generation++;
  entry->next_free = first_free;
  first_free = r->slot;
}

static uint64_t event_data(relay *r, int side) {
  return ((uint64_t)slots[r->slot].generation << 32) | ((uint64_t)r->slot << 1) | (uint64_t)side;
}

static void release(relay *r) {
  if (--r->references > 0) return;
  free(r);
}

/* Takes both descriptors out of the set now (so the caller may close them) and frees what the tunnel held. */
static void finish(relay *r, int error) {
  if (r->finished) return;
  r->finished = 1;
  r->error = error;
  for (int i = 0; i < 2; i++) {
    if (r->events[i] != 0) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, r->fds[i], NULL);
    r->events[i] = 0;
    if (r->owns_fds && r->fds[i] >= 0) close(r->fds[i]);
    r->fds[i] = -1;
    direction *d = &r->directions[i];
    give_back_pipe(&d->pipe, d->in_pipe);
    free(d->early);
    d->early = NULL;
  }
  free_slot(r);
  if (--running == 0) uv_unref((uv_handle_t *)&epoll_watch);
  release(r);
}

/*
 * Moves what it can from fds[index] to fds[1 - index] without blocking. Returns 0, or the errno that ends the
 * tunnel; leaves wants_read / wants_write saying what it waits for.
 */
static int pump(relay *r, int index) {
  direction *d = &r->directions[index];
  int source = r->fds[index];
  int destination = r->fds[1 - index];
  size_t moved = 0;
  d->wants_read = d->wants_write = 0;
  if (d->shut) return 0;
  for (;;) {
    if (d->early != NULL) {
      ssize_t n = send(destination, d->early + d->early_written, d->early_length - d->early_written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return d->wants_write = 1, 0;
        return errno;
      }
      d->early_written += (size_t)n;
      d->written += (uint64_t)n;
      if (d->early_written == d->early_length) {
        free(d->early);
        d->early = NULL;
      }
      continue;
    }
    if (d->in_pipe > 0) {
      ssize_t n = splice(d->pipe.read_end, NULL, destination, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return d->wants_write = 1, 0;
        return errno;
      }
      d->in_pipe -= (size_t)n;
      d->written += (uint64_t)n;
      moved += (size_t)n;
      if (d->in_pipe == 0 && d->drained) {
        d->drained = 0;
        give_back_pipe(&d->pipe, 0);
        return d->wants_read = 1, 0;
      }
      continue;
    }
    /* Checked before the turn's bound: a transfer whose last bytes end a turn has no more bytes coming to wake it. */
    if (d->limited && d->read == d->limit) {
      give_back_pipe(&d->pipe, 0);
      d->shut = 1;
      return 0;
    }
    if (d->source_ended) {
      /* A body of known length that ends early is cut short: the caller must not take it as complete. */
      if (d->limited) return ENODATA;
      give_back_pipe(&d->pipe, 0);
      if (shutdown(destination, SHUT_WR) != 0 && errno != ENOTCONN) return errno;
      d->shut = 1;
      return 0;
    }
    /* Its turn is over: level-triggered polling calls again while the source has more. */
    if (moved >= TURN_BYTES) return d->wants_read = 1, 0;
    if (d->pipe.read_end < 0) {
      int err = take_pipe(&d->pipe);
      if (err != 0) return err;
    }
    size_t asked = PIPE_BYTES;
    if (d->limited && d->limit - d->read < asked) asked = (size_t)(d->limit - d->read);
    ssize_t n = splice(source, NULL, d->pipe.write_end, NULL, asked, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        give_back_pipe(&d->pipe, 0);
        return d->wants_read = 1, 0;
      }
      return errno;
    }
    if (n == 0) {
      d->source_ended = 1;
      continue;
    }
    d->in_pipe = (size_t)n;
    d->read += (uint64_t)n;
    /*
     * Less than a pipe-full means the socket had no more queued: once these bytes are out, wait for the set to say
     * there is more instead of asking again (a splice that would only answer EAGAIN, on every small message).
     */
    if ((size_t)n < asked && !(d->limited && d->read == d->limit)) d->drained = 1;
  }
}

static void call_finish(relay *r) {
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value receiver, callback, argument, ignored;
  if (napi_get_reference_value(env, r->receiver, &receiver) == napi_ok && receiver != NULL &&
      napi_get_reference_value(env, finish_callback, &callback) == napi_ok && callback != NULL) {
    if (r->error == 0) napi_get_undefined(env, &argument);
    else napi_create_int32(env, r->error, &argument);
    if (napi_make_callback(env, async_context, receiver, callback, 1, &argument, &ignored) == napi_pending_exception) {
      /* Thrown from a loop callback, with no JavaScript caller to catch it: it is uncaught, as in any other callback. */
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* The receiver is held only while the tunnel runs: it holds the handle, whose finalizer would otherwise never run. */
static void drop_receiver(relay *r) {
  if (r->receiver == NULL) return;
  napi_delete_reference(r->env, r->receiver);
  r->receiver = NULL;
}

static int watch(relay *r);

/* One descriptor's events: readable moves its own direction on, writable the other's (the one that writes to it). */
static void on_event(relay *r, int side, uint32_t events) {
  int error = 0;
  if (events & EPOLLERR) {
    socklen_t length = sizeof error;
    if (getsockopt(r->fds[side], SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  }
  /* A hang-up, or an error already taken, is left for the reads and writes to meet. */
  if (error == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) error = pump(r, side);
  if (error == 0 && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) error = pump(r, 1 - side);
  if (error == 0 && !(r->directions[0].shut && r->directions[1].shut)) {
    error = watch(r);
    if (error == 0) return;
  }
  r->references++;
  finish(r, error);
  call_finish(r);
  drop_receiver(r);
  release(r);
}

static void on_epoll(uv_poll_t *handle, int status, int events) {
  (void)handle;
  (void)events;
  if (status < 0) return;
  struct epoll_event ready[64];
  int count = epoll_wait(epoll_fd, ready, 64, 0);
  for (int i = 0; i < count; i++) {
    uint64_t data = ready[i].data.u64;
    uint32_t slot = (uint32_t)(data & 0xffffffffu) >> 1;
    if (slots[slot].generation != (uint32_t)(data >> 32) || slots[slot].relay == NULL) continue;
    on_event(slots[slot].relay, (int)(data & 1), ready[i].events);
  }
}

static int events_for(relay *r, int index) {
  int events = 0;
  if (r->directions[index].wants_read) events |= EPOLLIN;
  if (r->directions[1 - index].wants_write) events |= EPOLLOUT;
  return events;
}

/*
 * Registers each descriptor for what its directions wait for now, where that changed. One that waits for nothing
 * leaves the set rather than staying with no events: the set reports a hang-up or an error whatever a descriptor is
 * registered for, and would report it on every turn of the loop while nothing here can act on it. Returns 0 or an
 * errno.
 */
static int watch(relay *r) {
  for (int i = 0; i < 2; i++) {
    int events = events_for(r, i);
    if (events == r->events[i]) continue;
    struct epoll_event event = {.events = (uint32_t)events, .data.u64 = event_data(r, i)};
    int operation = events == 0 ? EPOLL_CTL_DEL : r->events[i] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(epoll_fd, operation, r->fds[i], &event) != 0) return errno;
    r->events[i] = events;
  }
  return 0;
}

/* The process's set, made on first use, with the libuv poll that calls on_epoll when any of it is ready. */
static int ensure_epoll(uv_loop_t *loop) {
  if (epoll_fd >= 0) return 0;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  int err = uv_poll_init(loop, &epoll_watch, fd);
  if (err == 0) err = uv_poll_start(&epoll_watch, UV_READABLE, on_epoll);
  if (err != 0) {
    close(fd);
    return err;
  }
  uv_unref((uv_handle_t *)&epoll_watch);
  epoll_fd = fd;
  return 0;
}

static napi_value throw_code(napi_env env, const char *code, const char *message) {
  napi_value code_value, message_value, error;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_error(env, code_value, message_value, &error);
  napi_throw(env, error);
  return NULL;
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)hint;
  (void)env;
  relay *r = data;
  drop_receiver(r);
  release(r);
}

/* Copies a Buffer argument (or null) into the direction's early bytes. */
static int take_early(napi_env env, napi_value value, direction *d) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_null || type == napi_undefined) return 1;
  void *data;
  size_t length;
  if (napi_get_buffer_info(env, value, &data, &length) != napi_ok) return 0;
  if (length == 0) return 1;
  d->early = malloc(length);
  if (d->early == NULL) return 0;
  memcpy(d->early, data, length);
  d->early_length = length;
  return 1;
}

/*
 * Takes both descriptors (duplicates of them with `duplicate`) and starts polling. `length` < 0: a tunnel, both ways, FINs passed on;
 * otherwise a transfer of exactly `length` bytes from fds[0] to fds[1], early bytes first. Throws (code EEXIST, …)
 * where the sockets cannot be taken, and the caller copies in JavaScript.
 */
static napi_value begin(napi_env env, const int fds[2], int duplicate, napi_value early_a, napi_value early_b, int64_t length, napi_value receiver) {
  if (finish_callback == NULL) return throw_code(env, "ERR_INVALID_STATE", "setFinishCallback() was not called");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_code(env, "ERR_INVALID_STATE", "no event loop");
  relay *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_code(env, "ENOMEM", "out of memory");
  r->env = env;
  for (int i = 0; i < 2; i++) {
    r->fds[i] = -1;
    r->directions[i].pipe.read_end = r->directions[i].pipe.write_end = -1;
  }
  if (!take_early(env, early_a, &r->directions[0]) || !take_early(env, early_b, &r->directions[1])) {
    free(r->directions[0].early);
    free(r->directions[1].early);
    free(r);
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "early bytes must be a Buffer or null");
  }
  if (length >= 0) {
    r->directions[0].limited = 1;
    r->directions[0].limit = (uint64_t)length;
    r->directions[1].shut = 1; /* nothing flows back, and no FIN either way */
  }
  int err = ensure_epoll(loop);
  r->owns_fds = duplicate;
  for (int i = 0; i < 2 && err == 0; i++) {
    r->fds[i] = duplicate ? fcntl(fds[i], F_DUPFD_CLOEXEC, 0) : fds[i];
    if (r->fds[i] < 0) err = -errno;
  }
  if (err == 0) err = -take_slot(r);
  if (err != 0) {
    free(r->directions[0].early);
    free(r->directions[1].early);
    for (int i = 0; i < 2 && duplicate; i++) {
      if (r->fds[i] >= 0) close(r->fds[i]);
    }
    free(r);
    return throw_code(env, uv_err_name(err), uv_strerror(err));
  }
  if (running++ == 0) uv_ref((uv_handle_t *)&epoll_watch);
  /* Every direction starts out waiting to read, or to write its early bytes; the first event does the rest. */
  for (int i = 0; i < 2; i++) {
    if (r->directions[i].shut) continue;
    if (r->directions[i].early != NULL) r->directions[i].wants_write = 1;
    else r->directions[i].wants_read = 1;
  }
  r->references = 2; /* the slot's, released by finish(); the external's, released by its finalizer */
  err = watch(r);
  if (err != 0) {
    finish(r, err);
    free(r);
    return throw_code(env, uv_err_name(-err), uv_strerror(-err));
  }
  napi_value handle;
  if (napi_create_reference(env, receiver, 1, &r->receiver) != napi_ok ||
      napi_create_external(env, r, finalize_handle, NULL, &handle) != napi_ok) {
    drop_receiver(r);
    release(r);
    finish(r, ENOMEM);
    return throw_code(env, "ENOMEM", "out of memory");
  }
  return handle;
}

static int fd_pair(napi_env env, napi_value a, napi_value b, int fds[2]) {
  return napi_get_value_int32(env, a, &fds[0]) == napi_ok && napi_get_value_int32(env, b, &fds[1]) == napi_ok && fds[0] >= 0 && fds[1] >= 0;
}

/* start(fdA, fdB, earlyAtoB, earlyBtoA, receiver): a tunnel's handle. */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int fds[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !fd_pair(env, argv[0], argv[1], fds)) {
    napi_throw_type_error(env, NULL, "start(fdA, fdB, earlyAtoB, earlyBtoA, receiver)");
    return NULL;
  }
  return begin(env, fds, 0, argv[2], argv[3], -1, argv[4]);
}

/* transfer(fdFrom, fdTo, early, length, receiver): a response body's handle; finishes with ENODATA if the source ends short. */
static napi_value transfer(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int fds[2];
  int64_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !fd_pair(env, argv[0], argv[1], fds) ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || length < 0) {
    napi_throw_type_error(env, NULL, "transfer(fdFrom, fdTo, early, length, receiver)");
    return NULL;
  }
  napi_value none;
  napi_get_null(env, &none);
  return begin(env, fds, 1, argv[2], none, length, argv[4]);
}

static relay *relay_argument(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a kernel splice handle");
    return NULL;
  }
  return data;
}

/* stop(handle): stops at once, without the finish callback; the caller then destroys its sockets. */
static napi_value stop(napi_env env, napi_callback_info info) {
  relay *r = relay_argument(env, info);
  if (r == NULL) return NULL;
  finish(r, ECANCELED);
  drop_receiver(r);
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

/* counts(handle): [bytes delivered a to b, bytes delivered b to a]. */
static napi_value counts(napi_env env, napi_callback_info info) {
  relay *r = relay_argument(env, info);
  if (r == NULL) return NULL;
  napi_value result, value;
  napi_create_array_with_length(env, 2, &result);
  double figures[2] = {(double)r->directions[0].written, (double)r->directions[1].written};
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_double(env, figures[i], &value);
    napi_set_element(env, result, i, value);
  }
  return result;
}

/* moved(handle): bytes read from either socket so far, for the idle sweep. */
static napi_value moved(napi_env env, napi_callback_info info) {
  relay *r = relay_argument(env, info);
  if (r == NULL) return NULL;
  napi_value result;
  napi_create_double(env, (double)(r->directions[0].read + r->directions[1].read), &result);
  return result;
}

/* writerBlocked(handle): whether a→b (a transfer's only direction) waits for its destination to take bytes. */
static napi_value writer_blocked(napi_env env, napi_callback_info info) {
  relay *r = relay_argument(env, info);
  if (r == NULL) return NULL;
  napi_value result;
  napi_get_boolean(env, !r->finished && r->directions[0].wants_write, &result);
  return result;
}

/* setFinishCallback(fn): fn.call(receiver, errno or undefined) when a tunnel finishes on its own. */
static napi_value set_finish_callback(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "expected a function");
    return NULL;
  }
  /*
   * The set, its watch and this callback belong to the loop of the thread that loaded the module first. Another
   * thread (a worker_threads Worker) is refused, and its tunnels copy in JavaScript.
   */
  if (owner_env != NULL && owner_env != env) return throw_code(env, "ERR_INVALID_STATE", "the kernel copy serves only the thread that loaded it first");
  owner_env = env;
  if (finish_callback != NULL) napi_delete_reference(env, finish_callback);
  napi_create_reference(env, argv[0], 1, &finish_callback);
  if (async_context == NULL) {
    napi_value name;
    napi_create_string_utf8(env, "getaway:kernelSplice", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &async_context);
  }
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    {"start", NULL, start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"transfer", NULL, transfer, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stop", NULL, stop, NULL, NULL, NULL, napi_enumerable, NULL},
    {"counts", NULL, counts, NULL, NULL, NULL, napi_enumerable, NULL},
    {"moved", NULL, moved, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writerBlocked", NULL, writer_blocked, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setFinishCallback", NULL, set_finish_callback, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
