package modemsim

import "errors"

// These errors are returned while building a simulator.
var (
	// ErrInvalidConfig is returned by Start and Serve when a Config field is
	// out of range (negative durations, a send limit above 1460, ...).
	ErrInvalidConfig = errors.New("invalid simulator config")

	// ErrUnknownProfile is returned by ProfileByName for a name it does not know.
	ErrUnknownProfile = errors.New("unknown simulator profile")

	// ErrFaultSpec is returned by ParseFaults and ParseVariants for a spec
	// they cannot parse.
	ErrFaultSpec = errors.New("invalid fault spec")

	// ErrPTYUnsupported is returned by Start on systems without Linux
	// pseudo-terminals.
	ErrPTYUnsupported = errors.New("pseudo-terminals are not supported on this system")
)
