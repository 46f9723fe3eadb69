package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file measures what the load costs on this machine: CPU time and memory
// of the Voxanne server and of PostgreSQL, read from /proc (Linux only). The
// server is the process listening on --url's port (or --server-pid);
// PostgreSQL is every process named "postgres" (the postmaster and each
// backend).

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// sampleInterval is how often memory is sampled during the load: reading
// PostgreSQL's proportional set sizes walks every backend's page tables, which
// is work on the machine being measured, so not too often.
const sampleInterval = time.Second

// procUsage is one reading of a set of processes.
type procUsage struct {
	cpu   time.Duration // user+system time, summed
	rssKB int64         // resident set, summed (PostgreSQL: proportional set, see memKB)
}

// resourceReport is the resource section of a report: CPU as seconds and as
// cores (CPU seconds per wall second), memory in MB.
type resourceReport struct {
	ServerPID        int     `json:"server_pid,omitempty"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCores      float64 `json:"server_cores"`
	ServerRSSMBStart float64 `json:"server_rss_mb_start"`
	ServerRSSMBPeak  float64 `json:"server_rss_mb_peak"`
	ServerRSSMBEnd   float64 `json:"server_rss_mb_end"`
	PGProcesses      int     `json:"postgres_processes"`
	PGCPUSeconds     float64 `json:"postgres_cpu_seconds"`
	PGCores          float64 `json:"postgres_cores"`
	PGMemMBPeak      float64 `json:"postgres_pss_mb_peak"`
	Note             string  `json:"note,omitempty"`
}

// resourceMeter samples the server and PostgreSQL from start to stop.
type resourceMeter struct {
	serverPID int
	t0        time.Time
	server0   procUsage
	pg0       procUsage
	pgPIDs0   map[int]procUsage
	done      chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	peakSrv  int64
	peakPG   int64
	startSrv int64
}

// startMeter finds the server (pid 0: the process listening on port) and
// starts sampling. It returns nil with a reason when /proc cannot tell.
func startMeter(pid, port int) (*resourceMeter, string) {
	if pid == 0 {
		var err error
		if pid, err = listenerPID(port); err != nil {
			return nil, fmt.Sprintf("no resource figures: %v (give --server-pid)", err)
		}
	}
	srv, err := readProc(pid, false)
	if err != nil {
		return nil, fmt.Sprintf("no resource figures: server pid %d: %v", pid, err)
	}
	pgs := postgresProcs()
	m := &resourceMeter{serverPID: pid, t0: time.Now(), server0: srv, pgPIDs0: pgs,
		done: make(chan struct{}), peakSrv: srv.rssKB, startSrv: srv.rssKB}
	m.pg0 = sum(pgs)
	m.peakPG = m.pg0.rssKB
	m.wg.Go(func() {
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.sample()
			}
		}
	})
	return m, ""
}

func (m *resourceMeter) sample() {
	srv, _ := readProc(m.serverPID, false)
	pg := sum(postgresProcs())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakSrv = max(m.peakSrv, srv.rssKB)
	m.peakPG = max(m.peakPG, pg.rssKB)
}

// stop ends sampling and reports the usage since start. CPU of PostgreSQL
// backends that exited during the run is lost to /proc, so the PostgreSQL
// figure is a lower bound when connections churn (Voxanne's pools keep theirs).
func (m *resourceMeter) stop() resourceReport {
	close(m.done)
	m.wg.Wait()
	m.sample()
	wall := time.Since(m.t0).Seconds()
	srv, _ := readProc(m.serverPID, false)
	pgs := postgresProcs()
	var pgCPU time.Duration
	for pid, u := range pgs {
		pgCPU += u.cpu - m.pgPIDs0[pid].cpu // a new backend started from zero
	}
	mb := func(kb int64) float64 { return round(float64(kb)/1024, 1) }
	srvCPU := (srv.cpu - m.server0.cpu).Seconds()
	return resourceReport{
		ServerPID:        m.serverPID,
		ServerCPUSeconds: round(srvCPU, 2),
		ServerCores:      round(srvCPU/wall, 2),
		ServerRSSMBStart: mb(m.startSrv),
		ServerRSSMBPeak:  mb(m.peakSrv),
		ServerRSSMBEnd:   mb(srv.rssKB),
		PGProcesses:      len(pgs),
		PGCPUSeconds:     round(pgCPU.Seconds(), 2),
		PGCores:          round(pgCPU.Seconds()/wall, 2),
		PGMemMBPeak:      mb(m.peakPG),
	}
}

// writeText prints the resources section of a report.
func (r resourceReport) writeText(w io.Writer) {
	fmt.Fprintln(w, "resources (from /proc, over the warm-up and the load)")
	if r.Note != "" {
		line(w, "note", "%s", r.Note)
		return
	}
	line(w, "server", "pid %d: CPU %.2fs (%.2f cores); RSS %.1f MB at start, %.1f MB peak, %.1f MB at end",
		r.ServerPID, r.ServerCPUSeconds, r.ServerCores, r.ServerRSSMBStart, r.ServerRSSMBPeak, r.ServerRSSMBEnd)
	line(w, "postgres", "%d processes: CPU %.2fs (%.2f cores); PSS %.1f MB peak (shared memory counted once)",
		r.PGProcesses, r.PGCPUSeconds, r.PGCores, r.PGMemMBPeak)
}

func sum(us map[int]procUsage) procUsage {
	var s procUsage
	for _, u := range us {
		s.cpu += u.cpu
		s.rssKB += u.rssKB
	}
	return s
}

// postgresProcs reads every process named postgres, with its proportional
// set size: the shared buffers are mapped by every backend, and PSS divides
// them among the processes sharing them instead of counting them N times.
func postgresProcs() map[int]procUsage {
	out := map[int]procUsage{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if u, err := readProc(pid, true); err == nil {
			out[pid] = u
		}
	}
	return out
}

// readProc reads a process's CPU time and memory: RSS, or PSS when pss (from
// smaps_rollup, which needs the same user or root; RSS otherwise).
func readProc(pid int, pss bool) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces; the fields after it start
	// after its closing parenthesis, with state as field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("unreadable stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, errors.New("short stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	u.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	key, file := "VmRSS:", "status"
	if pss {
		key, file = "Pss:", "smaps_rollup"
	}
	u.rssKB, err = readKB(fmt.Sprintf("/proc/%d/%s", pid, file), key)
	if err != nil && pss {
		u.rssKB, err = readKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	}
	return u, err
}

// readKB returns the "key: N kB" value of a /proc file.
func readKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// listenerPID finds the process with a listening TCP socket on port: the
// socket's inode from /proc/net/tcp and tcp6, then the process holding it.
func listenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(l)
			// local_address is "HEXIP:HEXPORT"; state 0A is LISTEN.
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes[f[9]] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	// This process first (a server in the same process, as in tests), then
	// every other one except PostgreSQL's, which are many and never the server.
	pids := []string{strconv.Itoa(os.Getpid())}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) != "postgres" {
			pids = append(pids, filepath.Base(d))
		}
	}
	for _, pid := range pids {
		fds, _ := os.ReadDir("/proc/" + pid + "/fd")
		for _, fd := range fds {
			target, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name())
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
				return strconv.Atoi(pid)
			}
		}
	}
	return 0, fmt.Errorf("the process listening on port %d is not readable here", port)
}
