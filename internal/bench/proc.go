package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Linux /proc readers. USER_HZ is 100 on every Linux architecture Go
// supports, and /proc reports CPU time in it.
const userHZ = 100

// procStatusKB reads a "Name:   1234 kB" line (VmHWM, VmRSS) of
// /proc/PID/status; 0 if unavailable.
func procStatusKB(pid int, key string) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// procCPUTicks is utime+stime of a process (all its threads); pid 0 is
// this process.
func procCPUTicks(pid int) int64 {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	data, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return 0
	}
	// the command name may contain spaces; fields follow the last ')'
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// machineTicks returns busy and total CPU ticks of the whole machine
// (all CPUs) from /proc/stat, and the part of busy spent in interrupts
// (irq, softirq: loopback networking, block I/O completion); iowait
// counts as idle.
func machineTicks() (busy, total, irq int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, 0
	}
	for i, s := range f[1:] {
		n, _ := strconv.ParseInt(s, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
		if i == 5 || i == 6 {
			irq += n
		}
	}
	return busy, total, irq
}

// kthreadTicks is the CPU time of all kernel threads (kworkers, jbd2,
// ksoftirqd, ...): work the kernel does for every process, fsync's journal
// commits included.
func kthreadTicks() int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	const pfKthread = 0x00200000
	var sum int64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 13 {
			continue
		}
		flags, _ := strconv.ParseUint(f[6], 10, 64) // field 9
		if flags&pfKthread == 0 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		sum += ut + st
	}
	return sum
}

// cpuSnap is a CPU-time snapshot of the machine, the kernel, the server
// and this process.
type cpuSnap struct{ busy, total, irq, kthreads, server, self int64 }

func snapCPU(serverPID int) cpuSnap {
	b, t, irq := machineTicks()
	return cpuSnap{busy: b, total: t, irq: irq, kthreads: kthreadTicks(), server: procCPUTicks(serverPID), self: procCPUTicks(0)}
}

// CPUUse is CPU-seconds spent during a measured window.
type CPUUse struct {
	Available float64 `json:"available_s"` // cores × window
	Server    float64 `json:"server_s"`
	LoadGen   float64 `json:"loadgen_s"` // this process: the load generator
	Kernel    float64 `json:"kernel_s"`  // kernel threads and interrupts (on behalf of anyone)
	Foreign   float64 `json:"foreign_s"` // other processes: not part of the benchmark
	IdlePct   float64 `json:"idle_pct"`
}

func cpuBetween(a, b cpuSnap) CPUUse {
	s := func(t int64) float64 { return float64(t) / userHZ }
	u := CPUUse{
		Available: s(b.total - a.total),
		Server:    s(b.server - a.server),
		LoadGen:   s(b.self - a.self),
		Kernel:    s(b.kthreads - a.kthreads + b.irq - a.irq),
	}
	u.Foreign = max(0, s(b.busy-a.busy)-u.Server-u.LoadGen-u.Kernel)
	if u.Available > 0 {
		u.IdlePct = 100 * (1 - s(b.busy-a.busy)/u.Available)
	}
	return u
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemTotalG int64  `json:"mem_total_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadAvg   string `json:"loadavg_at_start"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemTotalG = (kb + 512*1024) >> 20
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(data))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}
