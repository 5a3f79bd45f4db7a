package crun

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func require(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if !HasFunction(n) {
			t.Skipf("skipped: the linked libcrun does not provide %s yet", n)
		}
	}
}

func TestLayouts(t *testing.T) {
	ctx, ctr := sizes()
	if ctx != 120 || ctr != 80 {
		t.Fatalf("struct sizes: context %d (want 120), container %d (want 80)", ctx, ctr)
	}
}

func TestVerbosityRoundTrip(t *testing.T) {
	require(t, "libcrun_set_verbosity", "libcrun_get_verbosity")
	old := GetVerbosity()
	defer SetVerbosity(old)
	for _, v := range []int{VerbosityDebug, VerbosityWarning, VerbosityError} {
		SetVerbosity(v)
		if got := GetVerbosity(); got != v {
			t.Fatalf("verbosity %d, want %d", got, v)
		}
	}
}

func TestHasFunction(t *testing.T) {
	if HasFunction("libcrun_no_such_function") {
		t.Fatal("HasFunction reports an unknown name")
	}
	if !HasFunction("libcrun_error_release") {
		t.Fatal("libcrun_error_release missing from the linked library")
	}
}

func TestErrorWrapsErrno(t *testing.T) {
	require(t, "libcrun_open_unix_domain_socket")
	_, err := OpenConsoleSocket(filepath.Join(t.TempDir(), "no", "such", "dir.sock"))
	if err == nil {
		t.Fatal("OpenConsoleSocket in a missing directory succeeded")
	}
	if !errors.Is(err, syscall.ENOENT) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %q (%T) does not wrap ENOENT", err, err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Errno != syscall.ENOENT || ce.Msg == "" {
		t.Fatalf("not a *crun.Error with ENOENT: %#v", err)
	}
	if !strings.HasSuffix(err.Error(), ": no such file or directory") {
		t.Fatalf("Error() is not crun's `msg: strerror` form: %q", err.Error())
	}
}

// sendFD connects to path and sends f with SCM_RIGHTS and a 1-byte payload, as a runtime does.
func sendFD(path string, f *os.File) error {
	s, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(s)
	if err := syscall.Connect(s, &syscall.SockaddrUnix{Name: path}); err != nil {
		return err
	}
	return syscall.Sendmsg(s, []byte(" "), syscall.UnixRights(int(f.Fd())), nil, 0)
}

func TestReceiveConsoleFD(t *testing.T) {
	require(t, "libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := OpenConsoleSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(l)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	done := make(chan error, 1)
	go func() { done <- sendFD(path, master) }()
	got, err := ReceiveConsoleFD(l, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var a, b syscall.Stat_t
	if err := syscall.Fstat(int(got.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fstat(int(master.Fd()), &b); err != nil {
		t.Fatal(err)
	}
	if a.Rdev != b.Rdev || a.Ino != b.Ino {
		t.Fatalf("received fd is not the sent pty master")
	}
}

func TestReceiveConsoleFDTimeout(t *testing.T) {
	require(t, "libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
	l, err := OpenConsoleSocket(filepath.Join(t.TempDir(), "c.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(l)
	start := time.Now()
	_, err = ReceiveConsoleFD(l, 100*time.Millisecond)
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("want ETIMEDOUT, got %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout took %v", time.Since(start))
	}
}

func TestSpec(t *testing.T) {
	require(t, "libcrun_container_spec")
	s, err := Spec(true)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]interface{}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("spec is not JSON: %v\n%s", err, s)
	}
	if !strings.HasPrefix(v["ociVersion"].(string), "1.") {
		t.Fatalf("ociVersion %v", v["ociVersion"])
	}
}

func TestLoadFromFileMissing(t *testing.T) {
	require(t, "libcrun_container_load_from_file")
	_, err := LoadFromFile(filepath.Join(t.TempDir(), "nope", "config.json"))
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("want ENOENT, got %v", err)
	}
}
