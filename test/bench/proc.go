package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Process measurements, Linux only (/proc and getrusage).

func statusField(file, field string) uint64 {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// childUsage sums CPU time and resident memory of this process's children
// but skip: kube-apiserver and etcd, started by envtest (skip is the
// manager's process, measured apart).
func childUsage(skip int) (cpu time.Duration, rss uint64) {
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		if filepath.Base(dir) == strconv.Itoa(skip) {
			continue
		}
		f := procStat(dir)
		if len(f) < 13 || f[1] != self {
			continue
		}
		cpu += statCPU(f)
		rss += statusField(filepath.Join(dir, "status"), "VmRSS:")
	}
	return cpu, rss
}

// procCPU is a process's user + system CPU time.
func procCPU(pid int) time.Duration {
	return statCPU(procStat(filepath.Join("/proc", strconv.Itoa(pid))))
}

// procStat returns the fields of /proc/<pid>/stat from field 3 (state) on.
func procStat(dir string) []string {
	raw, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func statCPU(f []string) time.Duration {
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
