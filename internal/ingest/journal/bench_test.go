package journal

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAppendParallel measures durable appends from 50 concurrent
// callers (SetParallelism(25) x GOMAXPROCS 2 on the reference machine, the
// 50 connections of the prototype), with ~103-byte records like the
// collector's events. ns/op is wall time per record across all callers.
func BenchmarkAppendParallel(b *testing.B) {
	for _, prealloc := range []bool{false, true} {
		b.Run(fmt.Sprintf("prealloc=%v", prealloc), func(b *testing.B) {
			j, err := Open(Options{Dir: b.TempDir(), Prealloc: prealloc})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			rec := payload(0, 103)
			b.SetParallelism(25)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := j.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Records)/float64(max(st.Groups, 1)), "records/group")
			b.ReportMetric(float64(st.SyncNanos)/float64(max(st.Syncs, 1))/1e3, "µs/sync")
		})
	}
}
