package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Store holds the desired state and its file. A change is prepared on a
// copy and validated (Prepare), checked by the caller against whatever else
// must accept it (the dataplane), and only then written and made current
// (Commit): a refused change leaves both the state and the file as they
// were. Readers get the current state without waiting for a writer.
type Store struct {
	mu      sync.Mutex // serialises Prepare/Commit pairs' writes
	path    string     // "" keeps the state in memory only
	limits  Limits
	cur     atomic.Pointer[State]
	lock    *lockFile
	existed bool
}

// Open locks and loads the state file at path, or starts empty if it does
// not exist. A file that cannot be parsed or breaks an invariant is an
// error: it is never overwritten.
func Open(path string, l Limits) (*Store, error) {
	s := &Store{path: path, limits: l}
	st := NewState()
	if path != "" {
		var err error
		if s.lock, err = lock(path); err != nil {
			return nil, err
		}
		if st, err = s.load(); err != nil {
			s.lock.unlock()
			return nil, err
		}
	}
	s.cur.Store(st)
	return s, nil
}

func (s *Store) load() (*State, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	s.existed = true
	st := NewState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", s.path, err)
	}
	// Files written before firewall rules existed have no counters for them.
	st.NextRuleID, st.NextPolicyID = max(st.NextRuleID, 1), max(st.NextPolicyID, 1)
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, this build reads %d", s.path, st.Version, stateVersion)
	}
	if err := st.Validate(s.limits); err != nil {
		return nil, fmt.Errorf("state file %s: %w", s.path, err)
	}
	return st, nil
}

// Existed reports whether the state file was there at Open.
func (s *Store) Existed() bool { return s.existed }

// Limits are the bounds every state is checked against.
func (s *Store) Limits() Limits { return s.limits }

// State is the current state. It is shared: callers must not modify it.
func (s *Store) State() *State { return s.cur.Load() }

// Prepare applies fn to a copy of the current state and validates the
// result; nothing is saved.
func (s *Store) Prepare(fn func(*State) error) (*State, error) {
	next := s.State().Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	if err := next.Validate(s.limits); err != nil {
		return nil, err
	}
	return next, nil
}

// Commit writes next to the file and makes it current. If the write fails
// the current state stays.
func (s *Store) Commit(next *State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(next); err != nil {
		return err
	}
	s.cur.Store(next)
	return nil
}

// Close releases the state file's lock.
func (s *Store) Close() error { return s.lock.unlock() }

// write replaces the file atomically: a crash leaves the old or the new state.
func (s *Store) write(st *State) error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return WriteAtomic(s.path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// WriteAtomic replaces the file at path with what write writes, or leaves
// it as it was: a temporary file in the same directory (mode 0600),
// synced, renamed over path, and the directory synced.
func WriteAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("directory of %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
