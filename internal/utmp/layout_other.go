//go:build !arm64 && !loong64

package utmp

// Native is the layout glibc uses on this architecture: 384 bytes (32-bit
// ut_session and ut_tv), in the machine's byte order.
var Native = Layout384.WithOrder(nativeOrder())
