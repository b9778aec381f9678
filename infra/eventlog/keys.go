package eventlog

import "encoding/binary"

const (
	prefixEvent    = 'e'
	prefixStream   = 's'
	prefixKernel   = 'k'
	prefixSnapshot = 'p'
)

var metaFirstKey = []byte("m first")

func eventKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixEvent)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func seqFromEventKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:9]) }

// indexKey is <prefix><name>0x00<seq>. Names never contain 0x00 (stream ids
// and kernel ids are validated), so the prefix of one name never matches
// another.
func indexKey(prefix byte, name string, seq uint64) []byte {
	return appendIndexKey(make([]byte, 0, len(name)+10), prefix, name, seq)
}

func appendIndexKey(dst []byte, prefix byte, name string, seq uint64) []byte {
	dst = append(dst, prefix)
	dst = append(dst, name...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func indexBounds(prefix byte, name string, after uint64) (lower, upper []byte) {
	lower = indexKey(prefix, name, after+1)
	upper = append([]byte{prefix}, name...)
	upper = append(upper, 1)
	return lower, upper
}

func seqFromIndexKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }
