package acceptance

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

// postgres is a throw-away PostgreSQL server from Debian's postgresql
// package, started on first use on a free loopback port in a temporary data
// directory, and stopped when the package's tests end.
var postgres struct {
	once sync.Once
	dsn  string // postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable
	err  error
}

// postgresDSN starts the server if needed and returns its URL.
func postgresDSN() (string, error) {
	postgres.once.Do(func() { postgres.dsn, postgres.err = startPostgres() })
	return postgres.dsn, postgres.err
}

func startPostgres() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return "", errors.New("PostgreSQL is not installed: run `make deps` (Debian package postgresql)")
	}
	sort.Strings(bins)
	binDir := filepath.Dir(bins[len(bins)-1])

	dir, err := os.MkdirTemp("", "mastio-ca-pg-")
	if err != nil {
		return "", err
	}
	// PostgreSQL refuses to run as root; as root, run it as the postgres
	// user the Debian package creates.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePortPair()
	if err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("mastio-ca-pg-%d.log", port)))
	if err != nil {
		return "", err
	}
	srv := command("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off")
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	atExit = append(atExit, func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		logFile.Close()
		os.Remove(logFile.Name())
		os.RemoveAll(dir)
	})

	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return dsn, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("postgres exited during start-up; log: %s", logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("postgres did not accept connections within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
