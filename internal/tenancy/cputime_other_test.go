//go:build !unix

package tenancy_test

import "time"

// cpuTime is unavailable here; the CPU-time metric is then not reported.
func cpuTime() time.Duration { return 0 }
