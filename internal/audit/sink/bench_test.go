package sink

import (
	"testing"
	"time"
)

func BenchmarkSyslogFormat(b *testing.B) {
	s, err := NewSyslog(SyslogConfig{URL: "tcp://127.0.0.1:514", Hostname: "h"})
	if err != nil {
		b.Fatal(err)
	}
	e := newMemLog(1).events[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.format(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s, _ := NewSigner(testSecret)
	body := make([]byte, 64<<10) // a 64 KiB batch
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = s.Sign("audit_0_499", time.Unix(1_700_000_000, 0), body)
	}
}
