package journal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// refFrame and refParse are an independent statement of the format, so the
// fuzz test does not check the journal against itself.
func refFrame(p []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, p...)
}

func refParse(seg []byte) (recs [][]byte, valid int) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	for len(seg)-valid >= 8 {
		n := int(binary.LittleEndian.Uint32(seg[valid:]))
		if n == 0 || n > 64<<10 || valid+8+n > len(seg) {
			break
		}
		p := seg[valid+8 : valid+8+n]
		if crc32.Checksum(p, tab) != binary.LittleEndian.Uint32(seg[valid+4:]) {
			break
		}
		recs = append(recs, p)
		valid += 8 + n
	}
	return recs, valid
}

// FuzzRecover writes arbitrary bytes after two valid records at the end of
// the newest segment (behind a valid older segment) and checks that Open
// never fails or panics on it, keeps exactly the valid prefix, reports the
// dropped bytes, never returns a record that fails its CRC, and appends
// correctly after recovery. Each input writes and fsyncs real files.
// fuzz-count: 2000x
func FuzzRecover(f *testing.F) {
	good := refFrame([]byte("hello, journal"))
	bad := refFrame([]byte("bad checksum"))
	bad[5] ^= 1
	f.Add([]byte{}, false)
	f.Add([]byte("garbage garbage garbage"), false)
	f.Add(good, false)
	f.Add(append(append([]byte{}, good...), 0xde, 0xad), true)
	f.Add(good[:len(good)-2], false)
	f.Add(bad, false)
	f.Add(make([]byte, 100), true)
	f.Add(append(make([]byte, 8), good...), false) // zero header, then a valid frame
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}, false)
	f.Add(append(append([]byte{}, bad...), good...), true)

	f.Fuzz(func(t *testing.T, tail []byte, prealloc bool) {
		dir := t.TempDir()
		var seg1, seg2 []byte
		var want [][]byte
		for i := range 3 {
			want = append(want, payload(i, 10+i))
			seg1 = append(seg1, refFrame(want[i])...)
		}
		for i := 3; i < 5; i++ {
			seg2 = append(seg2, refFrame(payload(i, 20))...)
		}
		seg2 = append(seg2, tail...)
		recs2, valid := refParse(seg2)
		want = append(want, recs2...)
		torn := int64(len(bytes.TrimRight(seg2[valid:], "\x00")))

		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg1, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(2)), seg2, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := Options{Dir: dir, SegmentSize: 64 << 10, Prealloc: prealloc}
		j, err := Open(opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()
		if got := j.Stats().TornBytesDropped; got != torn {
			t.Errorf("TornBytesDropped = %d, want %d", got, torn)
		}
		got, _ := readAll(t, j, Pos{})
		equalRecs(t, got, want) // want holds only CRC-checked records
		if end := j.End(); end != (Pos{2, int64(valid)}) {
			t.Fatalf("End = %v, want 2:%d", end, valid)
		}
		after := []byte("after recovery")
		mustAppend(t, j, after)
		got, _ = readAll(t, j, Pos{})
		equalRecs(t, got, append(want, after))
	})
}
