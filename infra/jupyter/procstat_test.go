package jupyter

import "testing"

func TestParseProcStatOddCommandName(t *testing.T) {
	line := "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.startTime != 987654 || st.pgrp != 1234 || st.state != 'S' {
		t.Fatalf("got %+v", st)
	}
	if _, err := parseProcStat([]byte("1 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}
