package journal

import "os"

// Pending is how many bytes of durable records lie after from: what a
// consumer at from has still to read (an edge collector's spool backlog).
// A segment sealed before Open whose end was not read yet counts with its
// file size, which may include zero padding.
func (j *Journal) Pending(from Pos) int64 {
	j.stateMu.Lock()
	defer j.stateMu.Unlock()
	end := j.end
	var n int64
	for _, s := range j.segs {
		if s.num < from.Segment || s.num > end.Segment {
			continue
		}
		size := s.end
		if s.num == end.Segment {
			size = end.Offset
		} else if size < 0 {
			if fi, err := os.Stat(j.segmentPath(s.num)); err == nil {
				size = fi.Size()
			}
		}
		if s.num == from.Segment {
			size -= from.Offset
		}
		n += max(size, 0)
	}
	return n
}
