package utmp

// Native is the layout glibc uses on this architecture: on loong64
// __WORDSIZE_TIME64_COMPAT32 is not set, so records are 400 bytes.
var Native = Layout400.WithOrder(nativeOrder())
