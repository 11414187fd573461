//go:build race

package waf

// raceBuild: under -race the CRS suite runs every 8th test (the full suite
// is rule coverage, run by the plain test job; -race is for the handler).
const raceBuild = true
