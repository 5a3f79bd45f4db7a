// Package crun binds crun-rs's libcrun (libcrun.so.0) through cgo.
//
// The calls follow crun's C API (and crun's Python module): NewContext, LoadFromFile,
// LoadFromMemory, Run, Create, Start, Delete, Kill, List, State, Spec, SetVerbosity,
// GetVerbosity, plus the console API (OpenConsoleSocket, ReceiveConsoleFD,
// ReceiveFDFromSocket).
//
// Errors are *Error values that wrap a syscall.Errno, so errors.Is(err, syscall.ENOENT) and
// errors.Is(err, fs.ErrNotExist) work; Error() renders crun's "msg: strerror" form.
//
// Build: the package links -lcrun through pkg-config (`libcrun.pc`, installed by
// `make install`); set PKG_CONFIG_PATH for a private prefix.  Every libcrun function is
// declared weak, so the package builds and runs against a library that lacks some of them:
// those calls return an ENOSYS *Error and HasFunction reports false.
package crun

/*
#cgo pkg-config: libcrun
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

// crun's public structs (crun-libcrun.md section 1.3; sizes checked by TestLayouts).
typedef struct libcrun_error_s { int status; char *msg; } *libcrun_error_t;
typedef void (*crun_output_handler) (int errno_, const char *msg, int verbosity, void *arg);
struct libcrun_context_s {
	const char *state_root, *id, *bundle, *console_socket, *pid_file, *notify_socket, *handler;
	int preserve_fds, listen_fds;
	crun_output_handler output_handler;
	void *output_handler_arg;
	int fifo_exec_wait_fd;
	bool systemd_cgroup, detach, no_new_keyring, force_no_cgroup, no_pivot;
	char **argv;
	int argc;
	void *handler_manager;
};
struct libcrun_container_s {
	void *container_def;
	uid_t host_uid; gid_t host_gid; uid_t container_uid; gid_t container_gid;
	char *config_file, *config_file_content;
	void *annotations;
	int proc_fd;
	void *private_data;
	void (*cleanup_private_data) (void *);
	struct libcrun_context_s *context;
};
struct libcrun_container_list_s { struct libcrun_container_list_s *next; char *name; };

#define W __attribute__((weak))
extern int libcrun_error_release (libcrun_error_t *err);
extern void libcrun_set_verbosity (int v) W;
extern int libcrun_get_verbosity (void) W;
extern struct libcrun_container_s *libcrun_container_load_from_file (const char *path, libcrun_error_t *err) W;
extern struct libcrun_container_s *libcrun_container_load_from_memory (const char *json, libcrun_error_t *err) W;
extern void libcrun_container_free (struct libcrun_container_s *c) W;
extern int libcrun_container_run (struct libcrun_context_s *, struct libcrun_container_s *, unsigned int, libcrun_error_t *) W;
extern int libcrun_container_create (struct libcrun_context_s *, struct libcrun_container_s *, unsigned int, libcrun_error_t *) W;
extern int libcrun_container_start (struct libcrun_context_s *, const char *, libcrun_error_t *) W;
extern int libcrun_container_delete (struct libcrun_context_s *, void *def, const char *, bool, libcrun_error_t *) W;
extern int libcrun_container_kill (struct libcrun_context_s *, const char *, const char *, libcrun_error_t *) W;
extern int libcrun_container_state (struct libcrun_context_s *, const char *, FILE *, libcrun_error_t *) W;
extern int libcrun_container_spec (bool root, FILE *out, libcrun_error_t *err) W;
extern int libcrun_get_containers_list (struct libcrun_container_list_s **ret, const char *state_root, libcrun_error_t *err) W;
extern void libcrun_free_containers_list (struct libcrun_container_list_s *l) W;
extern int libcrun_open_unix_domain_socket (const char *path, int dgram, libcrun_error_t *err) W;
extern int libcrun_receive_fd_from_socket (int sock, libcrun_error_t *err) W;
extern int libcrun_receive_console_fd (int listen_fd, int timeout_ms, libcrun_error_t *err) W;

// Whether the library provides each function (index = the Go fn* constants).
static void *go_crun_syms[] = {
	(void *) libcrun_error_release, (void *) libcrun_set_verbosity, (void *) libcrun_get_verbosity,
	(void *) libcrun_container_load_from_file, (void *) libcrun_container_load_from_memory,
	(void *) libcrun_container_free, (void *) libcrun_container_run, (void *) libcrun_container_create,
	(void *) libcrun_container_start, (void *) libcrun_container_delete, (void *) libcrun_container_kill,
	(void *) libcrun_container_state, (void *) libcrun_container_spec, (void *) libcrun_get_containers_list,
	(void *) libcrun_free_containers_list, (void *) libcrun_open_unix_domain_socket,
	(void *) libcrun_receive_fd_from_socket, (void *) libcrun_receive_console_fd,
};
static int go_crun_has (int i) { return go_crun_syms[i] != NULL; }

// libcrun_container_state / _spec write to a FILE *: collect it in memory.
static int go_crun_state (struct libcrun_context_s *ctx, const char *id, char **buf, size_t *len, libcrun_error_t *err)
{
	FILE *f = open_memstream (buf, len);
	if (f == NULL)
		return -errno - 1;
	int r = libcrun_container_state (ctx, id, f, err);
	fclose (f);
	return r;
}
static int go_crun_spec (bool root, char **buf, size_t *len, libcrun_error_t *err)
{
	FILE *f = open_memstream (buf, len);
	if (f == NULL)
		return -errno - 1;
	int r = libcrun_container_spec (root, f, err);
	fclose (f);
	return r;
}
static size_t go_sizeof_context (void) { return sizeof (struct libcrun_context_s); }
static size_t go_sizeof_container (void) { return sizeof (struct libcrun_container_s); }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// The functions the package calls, in go_crun_syms order.
var fnNames = []string{
	"libcrun_error_release", "libcrun_set_verbosity", "libcrun_get_verbosity",
	"libcrun_container_load_from_file", "libcrun_container_load_from_memory",
	"libcrun_container_free", "libcrun_container_run", "libcrun_container_create",
	"libcrun_container_start", "libcrun_container_delete", "libcrun_container_kill",
	"libcrun_container_state", "libcrun_container_spec", "libcrun_get_containers_list",
	"libcrun_free_containers_list", "libcrun_open_unix_domain_socket",
	"libcrun_receive_fd_from_socket", "libcrun_receive_console_fd",
}

// HasFunction reports whether the linked libcrun provides the named function (one of those
// this package calls).
func HasFunction(name string) bool {
	for i, n := range fnNames {
		if n == name {
			return C.go_crun_has(C.int(i)) != 0
		}
	}
	return false
}

func need(name string) error {
	if HasFunction(name) {
		return nil
	}
	return &Error{Errno: syscall.ENOSYS, Msg: fmt.Sprintf("`%s` is not provided by the linked libcrun", name)}
}

// Error is a libcrun error: a positive errno (0 when there is none) and the library's message.
type Error struct {
	Errno syscall.Errno
	Msg   string
}

// Error renders crun's form, "msg: strerror(errno)" (just msg when errno is 0).
func (e *Error) Error() string {
	if e.Errno == 0 {
		return e.Msg
	}
	return e.Msg + ": " + e.Errno.Error()
}

// Unwrap returns the errno, so errors.Is(err, syscall.ENOENT) works.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// takeError converts and releases a filled libcrun_error_t.
func takeError(err C.libcrun_error_t, ret C.int, op string) error {
	if err == nil {
		errno := syscall.Errno(0)
		if ret < 0 {
			errno = syscall.Errno(-ret - 1)
		}
		return &Error{Errno: errno, Msg: op + " failed"}
	}
	e := &Error{Errno: syscall.Errno(err.status), Msg: C.GoString(err.msg)}
	if e.Msg == "" {
		e.Msg = op + " failed"
	}
	C.libcrun_error_release(&err)
	return e
}

// SetVerbosity sets libcrun's log verbosity (VerbosityError, VerbosityWarning, VerbosityDebug).
func SetVerbosity(v int) {
	if need("libcrun_set_verbosity") == nil {
		C.libcrun_set_verbosity(C.int(v))
	}
}

// GetVerbosity returns libcrun's log verbosity.
func GetVerbosity() int {
	if need("libcrun_get_verbosity") != nil {
		return -1
	}
	return int(C.libcrun_get_verbosity())
}

// Verbosity levels.
const (
	VerbosityError   = 0
	VerbosityWarning = 1
	VerbosityDebug   = 2
)

// Run and create options.
const (
	RunOptionsPrefork    = 1 << 0
	RunOptionsKeep       = 1 << 1
	CreateOptionsPrefork = 1 << 0
)

// cstr allocates a C copy of s ("" stays NULL when nullable).
func cstr(s string, nullable bool) *C.char {
	if nullable && s == "" {
		return nil
	}
	return C.CString(s)
}

func sizes() (int, int) {
	return int(C.go_sizeof_context()), int(C.go_sizeof_container())
}

// ContextOptions are the libcrun_context_t fields a caller sets (zero values: unset).
type ContextOptions struct {
	StateRoot     string // default: libcrun's (/run/crun)
	Bundle        string // default "."
	ConsoleSocket string
	PidFile       string
	NotifySocket  string
	Handler       string
	PreserveFDs   int
	SystemdCgroup bool
	Detach        bool
	NoNewKeyring  bool
	ForceNoCgroup bool
	NoPivot       bool
}

// Context is a libcrun_context_t in C memory, freed by Close (or the garbage collector).
type Context struct {
	c    *C.struct_libcrun_context_s
	strs []*C.char
	id   string
}

// NewContext makes a context for container id.
func NewContext(id string, o ContextOptions) *Context {
	ctx := &Context{c: (*C.struct_libcrun_context_s)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_libcrun_context_s{})))), id: id}
	keep := func(s string, nullable bool) *C.char {
		p := cstr(s, nullable)
		if p != nil {
			ctx.strs = append(ctx.strs, p)
		}
		return p
	}
	if o.Bundle == "" {
		o.Bundle = "."
	}
	ctx.c.id = keep(id, false)
	ctx.c.bundle = keep(o.Bundle, false)
	ctx.c.state_root = keep(o.StateRoot, true)
	ctx.c.console_socket = keep(o.ConsoleSocket, true)
	ctx.c.pid_file = keep(o.PidFile, true)
	ctx.c.notify_socket = keep(o.NotifySocket, true)
	ctx.c.handler = keep(o.Handler, true)
	ctx.c.preserve_fds = C.int(o.PreserveFDs)
	ctx.c.fifo_exec_wait_fd = -1
	ctx.c.systemd_cgroup = C.bool(o.SystemdCgroup)
	ctx.c.detach = C.bool(o.Detach)
	ctx.c.no_new_keyring = C.bool(o.NoNewKeyring)
	ctx.c.force_no_cgroup = C.bool(o.ForceNoCgroup)
	ctx.c.no_pivot = C.bool(o.NoPivot)
	runtime.SetFinalizer(ctx, (*Context).Close)
	return ctx
}

// ID is the context's container id.
func (ctx *Context) ID() string { return ctx.id }

// Close frees the C context (idempotent).
func (ctx *Context) Close() {
	for _, p := range ctx.strs {
		C.free(unsafe.Pointer(p))
	}
	ctx.strs = nil
	if ctx.c != nil {
		C.free(unsafe.Pointer(ctx.c))
		ctx.c = nil
	}
}

func (ctx *Context) ptr() (*C.struct_libcrun_context_s, error) {
	if ctx == nil || ctx.c == nil {
		return nil, &Error{Errno: syscall.EINVAL, Msg: "the context is closed"}
	}
	return ctx.c, nil
}

// Container is a loaded OCI configuration (libcrun_container_t), freed by Close.
type Container struct {
	c   *C.struct_libcrun_container_s
	ctx *Context // libcrun may keep container->context
}

// Close frees the container (idempotent).
func (c *Container) Close() {
	if c.c != nil && need("libcrun_container_free") == nil {
		C.libcrun_container_free(c.c)
	}
	c.c = nil
}

func (c *Container) ptr() (*C.struct_libcrun_container_s, error) {
	if c == nil || c.c == nil {
		return nil, &Error{Errno: syscall.EINVAL, Msg: "the container is closed"}
	}
	return c.c, nil
}

func newContainer(p *C.struct_libcrun_container_s) *Container {
	c := &Container{c: p}
	runtime.SetFinalizer(c, (*Container).Close)
	return c
}

// LoadFromFile loads config.json from path.
func LoadFromFile(path string) (*Container, error) {
	if err := need("libcrun_container_load_from_file"); err != nil {
		return nil, err
	}
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	var e C.libcrun_error_t
	c := C.libcrun_container_load_from_file(p, &e)
	if c == nil {
		return nil, takeError(e, -1, "load_from_file")
	}
	return newContainer(c), nil
}

// LoadFromMemory loads an OCI configuration from JSON text.
func LoadFromMemory(json string) (*Container, error) {
	if err := need("libcrun_container_load_from_memory"); err != nil {
		return nil, err
	}
	p := C.CString(json)
	defer C.free(unsafe.Pointer(p))
	var e C.libcrun_error_t
	c := C.libcrun_container_load_from_memory(p, &e)
	if c == nil {
		return nil, takeError(e, -1, "load_from_memory")
	}
	return newContainer(c), nil
}

// Run runs the container; without Detach it waits and returns the exit status.
func (ctx *Context) Run(c *Container, options uint) (int, error) {
	return ctx.runOrCreate(c, options, false)
}

// Create creates the container (options: CreateOptionsPrefork as crun's Python module, or 0).
func (ctx *Context) Create(c *Container, options uint) (int, error) {
	return ctx.runOrCreate(c, options, true)
}

func (ctx *Context) runOrCreate(c *Container, options uint, create bool) (int, error) {
	name := "libcrun_container_run"
	if create {
		name = "libcrun_container_create"
	}
	if err := need(name); err != nil {
		return -1, err
	}
	cp, err := ctx.ptr()
	if err != nil {
		return -1, err
	}
	kp, err := c.ptr()
	if err != nil {
		return -1, err
	}
	c.ctx = ctx
	// libcrun forks and waits for children: keep this goroutine on one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var e C.libcrun_error_t
	var r C.int
	if create {
		r = C.libcrun_container_create(cp, kp, C.uint(options), &e)
	} else {
		r = C.libcrun_container_run(cp, kp, C.uint(options), &e)
	}
	if r < 0 {
		return int(r), takeError(e, r, name)
	}
	return int(r), nil
}

func (ctx *Context) idCall(name, id string, f func(*C.struct_libcrun_context_s, *C.char, *C.libcrun_error_t) C.int) error {
	if err := need(name); err != nil {
		return err
	}
	cp, err := ctx.ptr()
	if err != nil {
		return err
	}
	p := C.CString(id)
	defer C.free(unsafe.Pointer(p))
	var e C.libcrun_error_t
	if r := f(cp, p, &e); r < 0 {
		return takeError(e, r, name)
	}
	return nil
}

// Start starts a created container.
func (ctx *Context) Start(id string) error {
	return ctx.idCall("libcrun_container_start", id, func(c *C.struct_libcrun_context_s, p *C.char, e *C.libcrun_error_t) C.int {
		return C.libcrun_container_start(c, p, e)
	})
}

// Delete deletes a container; force kills it first.
func (ctx *Context) Delete(id string, force bool) error {
	return ctx.idCall("libcrun_container_delete", id, func(c *C.struct_libcrun_context_s, p *C.char, e *C.libcrun_error_t) C.int {
		return C.libcrun_container_delete(c, nil, p, C.bool(force), e)
	})
}

// Kill sends signal ("SIGKILL", "KILL" or a number such as "9") to the container.
func (ctx *Context) Kill(id, signal string) error {
	s := C.CString(signal)
	defer C.free(unsafe.Pointer(s))
	return ctx.idCall("libcrun_container_kill", id, func(c *C.struct_libcrun_context_s, p *C.char, e *C.libcrun_error_t) C.int {
		return C.libcrun_container_kill(c, p, s, e)
	})
}

// List returns the names of the containers under the context's state root.
func (ctx *Context) List() ([]string, error) {
	if err := need("libcrun_get_containers_list"); err != nil {
		return nil, err
	}
	cp, err := ctx.ptr()
	if err != nil {
		return nil, err
	}
	var head *C.struct_libcrun_container_list_s
	var e C.libcrun_error_t
	if r := C.libcrun_get_containers_list(&head, cp.state_root, &e); r < 0 {
		return nil, takeError(e, r, "libcrun_get_containers_list")
	}
	names := []string{}
	for it := head; it != nil; it = it.next {
		names = append(names, C.GoString(it.name))
	}
	if head != nil {
		C.libcrun_free_containers_list(head)
	}
	return names, nil
}

// State returns the container's state as the JSON text `crun state` prints.
func (ctx *Context) State(id string) (string, error) {
	if err := need("libcrun_container_state"); err != nil {
		return "", err
	}
	cp, err := ctx.ptr()
	if err != nil {
		return "", err
	}
	p := C.CString(id)
	defer C.free(unsafe.Pointer(p))
	var buf *C.char
	var n C.size_t
	var e C.libcrun_error_t
	r := C.go_crun_state(cp, p, &buf, &n, &e)
	out := C.GoStringN(buf, C.int(n))
	C.free(unsafe.Pointer(buf))
	if r < 0 {
		return "", takeError(e, r, "libcrun_container_state")
	}
	return out, nil
}

// Spec returns a default config.json (for root when root is true).
func Spec(root bool) (string, error) {
	if err := need("libcrun_container_spec"); err != nil {
		return "", err
	}
	var buf *C.char
	var n C.size_t
	var e C.libcrun_error_t
	r := C.go_crun_spec(C.bool(root), &buf, &n, &e)
	out := C.GoStringN(buf, C.int(n))
	C.free(unsafe.Pointer(buf))
	if r < 0 {
		return "", takeError(e, r, "libcrun_container_spec")
	}
	return out, nil
}

// OpenConsoleSocket creates a listening AF_UNIX stream socket at path, for
// ContextOptions.ConsoleSocket; the caller closes the returned fd.
func OpenConsoleSocket(path string) (int, error) {
	if err := need("libcrun_open_unix_domain_socket"); err != nil {
		return -1, err
	}
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	var e C.libcrun_error_t
	r := C.libcrun_open_unix_domain_socket(p, 0, &e)
	if r < 0 {
		return -1, takeError(e, r, "libcrun_open_unix_domain_socket")
	}
	return int(r), nil
}

// ReceiveConsoleFD accepts one connection on listenFD and returns the pty master it carries.
// timeout <= 0 waits forever; a timeout is an ETIMEDOUT *Error.
func ReceiveConsoleFD(listenFD int, timeout time.Duration) (*os.File, error) {
	if err := need("libcrun_receive_console_fd"); err != nil {
		return nil, err
	}
	ms := C.int(-1)
	if timeout > 0 {
		ms = C.int(timeout / time.Millisecond)
	}
	var e C.libcrun_error_t
	r := C.libcrun_receive_console_fd(C.int(listenFD), ms, &e)
	if r < 0 {
		return nil, takeError(e, r, "libcrun_receive_console_fd")
	}
	return os.NewFile(uintptr(r), "console"), nil
}

// ReceiveFDFromSocket receives one SCM_RIGHTS fd over the connected socket sock.
func ReceiveFDFromSocket(sock int) (*os.File, error) {
	if err := need("libcrun_receive_fd_from_socket"); err != nil {
		return nil, err
	}
	var e C.libcrun_error_t
	r := C.libcrun_receive_fd_from_socket(C.int(sock), &e)
	if r < 0 {
		return nil, takeError(e, r, "libcrun_receive_fd_from_socket")
	}
	return os.NewFile(uintptr(r), "fd"), nil
}
