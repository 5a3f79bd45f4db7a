package crun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var containerAPI = []string{
	"libcrun_container_load_from_file", "libcrun_container_load_from_memory",
	"libcrun_container_free", "libcrun_container_run", "libcrun_container_create",
	"libcrun_container_start", "libcrun_container_delete", "libcrun_container_kill",
	"libcrun_container_state", "libcrun_get_containers_list", "libcrun_free_containers_list",
}

func busybox() string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// makeBundle writes a busybox bundle running args and returns its path.
func makeBundle(t *testing.T, args []string, terminal bool, mounts []map[string]interface{}) string {
	t.Helper()
	require(t, containerAPI...)
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root")
	}
	bb := busybox()
	if bb == "" {
		t.Skip("skipped: no static busybox (apt install busybox-static)")
	}
	b := t.TempDir()
	rootfs := filepath.Join(b, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "tmp", "out"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "echo", "sleep", "true", "tty"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	ms := []map[string]interface{}{
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	}
	ms = append(ms, mounts...)
	cfg := map[string]interface{}{
		"ociVersion": "1.0.2",
		"process": map[string]interface{}{
			"terminal":        terminal,
			"user":            map[string]int{"uid": 0, "gid": 0},
			"args":            args,
			"env":             []string{"PATH=/bin", "TERM=xterm"},
			"cwd":             "/",
			"capabilities":    map[string][]string{"bounding": caps, "effective": caps, "permitted": caps},
			"rlimits":         []map[string]interface{}{{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}},
			"noNewPrivileges": true,
		},
		"root":     map[string]interface{}{"path": "rootfs", "readonly": false},
		"hostname": "gotest",
		"mounts":   ms,
		"linux": map[string]interface{}{"namespaces": []map[string]string{
			{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}}},
	}
	js, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(b, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func newID() string { return fmt.Sprintf("go-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000000) }

// Foreground Run in a Go process: the runtime's other threads take SIGCHLD, so the wait must
// not depend on it (crun-rs waits on a pidfd).
func TestRunForegroundExitStatus(t *testing.T) {
	out := t.TempDir()
	b := makeBundle(t, []string{"sh", "-c", "echo hello > /out/result; exit 3"}, false,
		[]map[string]interface{}{{"destination": "/out", "type": "bind", "source": out, "options": []string{"rbind", "rw"}}})
	ctx := NewContext(newID(), ContextOptions{Bundle: b, StateRoot: t.TempDir()})
	defer ctx.Close()
	c, err := LoadFromFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := ctx.Run(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r != 3 {
		t.Fatalf("exit status %d, want 3", r)
	}
	got, err := os.ReadFile(filepath.Join(out, "result"))
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("the command did not run: %q %v", got, err)
	}
}

// RunOptionsPrefork: the runtime runs in a forked, detached process (forked from a
// multithreaded Go process); the exit status and errors come back through a pipe.
func TestRunPrefork(t *testing.T) {
	b := makeBundle(t, []string{"sh", "-c", "exit 5"}, false, nil)
	ctx := NewContext(newID(), ContextOptions{Bundle: b, StateRoot: t.TempDir()})
	defer ctx.Close()
	c, err := LoadFromFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := ctx.Run(c, RunOptionsPrefork)
	if err != nil {
		t.Fatal(err)
	}
	if r != 5 {
		t.Fatalf("exit status %d, want 5", r)
	}
	b2 := makeBundle(t, []string{"/nonexistent-cmd"}, false, nil)
	ctx2 := NewContext(newID(), ContextOptions{Bundle: b2, StateRoot: t.TempDir()})
	defer ctx2.Close()
	c2, err := LoadFromFile(filepath.Join(b2, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = ctx2.Run(c2, RunOptionsPrefork)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-cmd") {
		t.Fatalf("want the not-found error through the pipe, got %v", err)
	}
}

func state(t *testing.T, ctx *Context, id string) map[string]interface{} {
	t.Helper()
	s, err := ctx.State(id)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]interface{}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("state is not JSON: %v: %s", err, s)
	}
	return v
}

func TestLifecycle(t *testing.T) {
	b := makeBundle(t, []string{"sleep", "100"}, false, nil)
	id := newID()
	ctx := NewContext(id, ContextOptions{Bundle: b, StateRoot: t.TempDir()})
	defer ctx.Close()
	c, err := LoadFromFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := ctx.Create(c, CreateOptionsPrefork); err != nil {
		t.Fatal(err)
	}
	defer ctx.Delete(id, true)
	names, err := ctx.List()
	if err != nil || len(names) != 1 || names[0] != id {
		t.Fatalf("List() = %v, %v; want [%s]", names, err, id)
	}
	if s := state(t, ctx, id); s["status"] != "created" || s["id"] != id {
		t.Fatalf("state after create: %v", s)
	}
	if err := ctx.Start(id); err != nil {
		t.Fatal(err)
	}
	if s := state(t, ctx, id); s["status"] != "running" {
		t.Fatalf("state after start: %v", s)
	}
	if err := ctx.Kill(id, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for state(t, ctx, id)["status"] != "stopped" {
		if time.Now().After(deadline) {
			t.Fatal("container did not stop after SIGKILL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ctx.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	if names, _ := ctx.List(); len(names) != 0 {
		t.Fatalf("still listed after delete: %v", names)
	}
}

func TestMissingContainerErrors(t *testing.T) {
	require(t, containerAPI...)
	ctx := NewContext("nope", ContextOptions{StateRoot: t.TempDir()})
	defer ctx.Close()
	for name, err := range map[string]error{
		"start":  ctx.Start("nope"),
		"kill":   ctx.Kill("nope", "SIGKILL"),
		"delete": ctx.Delete("nope", false),
	} {
		if !errors.Is(err, syscall.ENOENT) {
			t.Errorf("%s of a missing container: want ENOENT, got %v", name, err)
		}
	}
	_, err := ctx.State("nope")
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("state of a missing container: want ENOENT, got %v", err)
	}
}

func TestNonexistentCommand(t *testing.T) {
	b := makeBundle(t, []string{"/nonexistent-cmd"}, false, nil)
	ctx := NewContext(newID(), ContextOptions{Bundle: b, StateRoot: t.TempDir()})
	defer ctx.Close()
	c, err := LoadFromFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = ctx.Run(c, 0)
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "nonexistent-cmd") {
		t.Fatalf("want an ENOENT error naming the command, got %v", err)
	}
}

func TestConsoleSocketContainer(t *testing.T) {
	require(t, "libcrun_open_unix_domain_socket", "libcrun_receive_console_fd")
	b := makeBundle(t, []string{"sh", "-c", "echo hello from the pty; tty"}, true, nil)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := OpenConsoleSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(l)
	id := newID()
	ctx := NewContext(id, ContextOptions{Bundle: b, StateRoot: t.TempDir(), ConsoleSocket: sock})
	defer ctx.Close()
	c, err := LoadFromFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := ctx.Create(c, CreateOptionsPrefork); err != nil {
		t.Fatal(err)
	}
	defer ctx.Delete(id, true)
	master, err := ReceiveConsoleFD(l, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := ctx.Start(id); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(master) // ends with EIO when the container exits
		done <- data
	}()
	select {
	case data := <-done:
		text := strings.ReplaceAll(string(data), "\r", "")
		if !strings.Contains(text, "hello from the pty\n/dev/pts/") {
			t.Fatalf("pty output: %q", text)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no EOF/EIO on the pty master within 15s")
	}
}
