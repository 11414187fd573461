//go:build !unix

package bench

import "time"

// cpuTime is unavailable here; CPU-time metrics are then not reported.
func cpuTime() time.Duration { return 0 }
