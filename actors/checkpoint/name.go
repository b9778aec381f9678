package checkpoint

import (
	"errors"
	"fmt"
)

// MaxNameLen bounds a checkpoint name.
const MaxNameLen = 100

// ErrInvalidName: the name cannot be a checkpoint name.
var ErrInvalidName = errors.New("checkpoint: invalid name")

// ValidName accepts 1..MaxNameLen letters, digits, '-', '_' and '.', not
// starting with '.'. NB: the name becomes a file name under checkpoints/;
// this is what keeps "../../etc/passwd" out.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the name is empty: give one such as \"friday\"", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: the name is %d characters long: use at most %d", ErrInvalidName, len(name), MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w %q: a name must not start with '.': use letters, digits, '-', '_' and '.'", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w %q: character %q is not allowed (no slashes or paths): use letters, digits, '-', '_' and '.'", ErrInvalidName, name, c)
		}
	}
	return nil
}
