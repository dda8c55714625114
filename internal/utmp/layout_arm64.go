package utmp

// Native is the layout glibc uses on this architecture: on arm64
// __WORDSIZE_TIME64_COMPAT32 is 0, so records are 400 bytes.
var Native = Layout400.WithOrder(nativeOrder())
