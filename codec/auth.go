package codec

import "fmt"

// Auth is an MQTT 5 AUTH packet, used for extended authentication.
type Auth struct {
	ReasonCode     byte // 0x00 success, 0x18 continue, 0x19 re-authenticate
	AuthMethod     string
	AuthData       []byte
	ReasonString   string
	UserProperties []UserProperty
}

type authLayout struct{ remaining, props, total int }

func layoutAuth(v Version, a *Auth) (authLayout, error) {
	var l authLayout
	if v != V5 {
		return l, fmt.Errorf("AUTH with MQTT %s: %w", v, ErrUnsupportedVersion)
	}
	for _, s := range [...]struct{ field, value string }{
		{"AUTH method", a.AuthMethod},
		{"AUTH reason string", a.ReasonString},
	} {
		if s.value == "" {
			continue
		}
		n, err := checkString(s.field, s.value)
		if err != nil {
			return l, err
		}
		l.props += 1 + n
	}
	if len(a.AuthData) > 0 {
		n, err := checkBinary("AUTH data", a.AuthData)
		if err != nil {
			return l, err
		}
		l.props += 1 + n
	}
	u, err := userPropertiesSize(a.UserProperties)
	if err != nil {
		return l, fmt.Errorf("AUTH: %w", err)
	}
	l.props += u
	if l.props > 0 || a.ReasonCode != 0 {
		l.remaining = 1 + propertiesSize(l.props)
	}
	l.total, err = packetSize(TypeAuth, l.remaining)
	return l, err
}

// AuthSize returns the exact number of bytes AppendAuth appends.
func AuthSize(v Version, a *Auth) (int, error) {
	l, err := layoutAuth(v, a)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendAuth appends an MQTT 5 AUTH packet. Other versions have no AUTH and
// get ErrUnsupportedVersion.
func AppendAuth(dst []byte, v Version, a *Auth) ([]byte, error) {
	l, err := layoutAuth(v, a)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(TypeAuth)<<4)
	dst = appendVarint(dst, l.remaining)
	if l.remaining == 0 {
		return dst, nil
	}
	dst = append(dst, a.ReasonCode)
	dst = appendVarint(dst, l.props)
	if a.AuthMethod != "" {
		dst = appendPropString(dst, propAuthMethod, a.AuthMethod)
	}
	if len(a.AuthData) > 0 {
		dst = appendPropBinary(dst, propAuthData, a.AuthData)
	}
	if a.ReasonString != "" {
		dst = appendPropString(dst, propReasonString, a.ReasonString)
	}
	return appendUserProperties(dst, a.UserProperties), nil
}

func decodeAuth(a *Auth, body []byte) error {
	ps := parser{b: body}
	if ps.remaining() > 0 {
		a.ReasonCode = ps.u8("AUTH reason code")
		if ps.remaining() > 0 {
			r := readProperties(&ps, propsAuth, "AUTH")
			for pr, ok := r.next(); ok; pr, ok = r.next() {
				switch pr.id {
				case propAuthMethod:
					a.AuthMethod = string(pr.data)
				case propAuthData:
					if len(pr.data) > 0 {
						a.AuthData = pr.data
					}
				case propReasonString:
					a.ReasonString = string(pr.data)
				case propUserProperty:
					a.UserProperties = appendUserProperty(a.UserProperties, pr)
				}
			}
			if err := r.err(); err != nil {
				return err
			}
		}
	}
	ps.done("AUTH")
	return ps.err
}
