//go:build !race

package waf

const raceBuild = false
