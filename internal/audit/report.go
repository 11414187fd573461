package audit

// Total is the number of findings: the report lists the first few of each
// kind in Problems, and counts them all in Counts.
func (r Report) Total() int64 {
	var n int64
	for _, c := range r.Counts {
		n += c
	}
	return max(n, int64(len(r.Problems)))
}
