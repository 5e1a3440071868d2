package uplink

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// Downlink defaults.
const (
	// DefaultDownlinkWait bounds the wait for deliveries after SUBACK; the
	// wait normally ends after one round trip (session.DownlinkConfig).
	DefaultDownlinkWait = 10 * time.Second
	// DefaultInboxHookAttempts is how often a failing hook is tried per
	// message, one attempt per window, before the message is left to the
	// operator (uploader inbox ack).
	DefaultInboxHookAttempts = 5
	// DefaultInboxHookTimeout bounds one run of the hook.
	DefaultInboxHookTimeout = time.Minute
	// downlinkReceiveMaximum is announced in MQTT 5 CONNECTs: every
	// delivery costs an fsync before its acknowledgement, so the broker
	// need not have many outstanding.
	downlinkReceiveMaximum = 16
	// MaxInboxMessage is the inbox's per-message limit: the largest packet
	// the session accepts, announced as Maximum Packet Size in MQTT 5.
	MaxInboxMessage = session.MaxInboundPacket
)

// subscriptionsNote is the queue note of the subscription set the broker
// last granted ("filter:qos" lines, sorted).
const subscriptionsNote = "subscriptions"

// packetIDNote is the queue note of the last packet identifier a persistent
// session used (session.DownlinkConfig.LastPacketID).
const packetIDNote = "packet-id"

// ParseSubscription reads FILTER[:QOS] (QoS 0, 1 or 2; default 1). A
// suffix ":<digits>" is always taken as the QoS.
func ParseSubscription(s string) (codec.Subscription, error) {
	sub := codec.Subscription{Filter: s, QoS: 1}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && i < len(s)-1 && strings.Trim(s[i+1:], "0123456789") == "" {
		q, err := strconv.Atoi(s[i+1:])
		if err != nil || q > 2 {
			return sub, fmt.Errorf("--subscribe %q: QoS %q is not 0, 1 or 2", s, s[i+1:])
		}
		sub.Filter, sub.QoS = s[:i], byte(q)
	}
	if err := codec.ValidateTopicFilter(sub.Filter); err != nil {
		return sub, fmt.Errorf("--subscribe %q: %w", s, err)
	}
	return sub, nil
}

func (c *Config) validateDownlink() error {
	seen := map[string]bool{}
	for _, s := range c.Subscriptions {
		if err := codec.ValidateTopicFilter(s.Filter); err != nil {
			return fmt.Errorf("--subscribe %q: %w", s.Filter, err)
		}
		if s.QoS > 2 {
			return fmt.Errorf("--subscribe %q: QoS %d is not 0, 1 or 2", s.Filter, s.QoS)
		}
		if seen[s.Filter] {
			return fmt.Errorf("--subscribe %q is given twice", s.Filter)
		}
		seen[s.Filter] = true
	}
	switch {
	case c.SessionExpiry < 0 || c.SessionExpiry > math.MaxUint32*time.Second:
		return fmt.Errorf("--session-expiry %s is outside 0..%ds", c.SessionExpiry, uint32(math.MaxUint32))
	case len(c.Subscriptions) > 0 && c.MQTTVersion == codec.V5 && c.SessionExpiry < time.Second:
		return errors.New("--session-expiry must be at least 1s with --subscribe and MQTT 5, or the broker forgets the session (and the messages for it) at once")
	case c.DownlinkWait < 0:
		return fmt.Errorf("--downlink-wait %s is negative", c.DownlinkWait)
	case len(c.Subscriptions) > 0 && c.WindowTimeout > 0 && c.DownlinkWait >= c.WindowTimeout:
		// Only a window that subscribes waits for the downlink.
		return fmt.Errorf("--downlink-wait %s is not shorter than --window-timeout %s", c.DownlinkWait, c.WindowTimeout)
	case c.InboxMaxBytes < 0:
		return fmt.Errorf("--inbox-max-bytes %d is negative", c.InboxMaxBytes)
	case c.InboxHookAttempts < 0:
		return fmt.Errorf("--inbox-hook-attempts %d is negative", c.InboxHookAttempts)
	case c.InboxHookTimeout < 0:
		return fmt.Errorf("--inbox-hook-timeout %s is negative", c.InboxHookTimeout)
	}
	return nil
}

// subscriptionSet is the canonical form of a set of subscriptions, as
// stored in the subscriptions note.
func subscriptionSet(subs []codec.Subscription) string {
	lines := make([]string, len(subs))
	for i, s := range subs {
		lines[i] = s.Filter + ":" + strconv.Itoa(int(s.QoS))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// downlink makes the session persistent and subscribing when
// subscriptions are configured. The set the broker last granted is in the
// queue file: the session subscribes again only when it changed (or the
// broker lost the session), and unsubscribes the filters no longer set.
func (w *window) downlink(scfg *session.Config) {
	cfg := w.cfg
	prevRaw, err := w.q.Note(subscriptionsNote)
	if err != nil {
		w.log.Warn("could not read the subscriptions granted before; subscribing again", "err", err)
	}
	prev := string(prevRaw)
	if len(cfg.Subscriptions) == 0 {
		if prev != "" {
			// A clean session drops the broker's subscriptions with it.
			if err := w.q.UpdateNote(subscriptionsNote, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
				w.log.Warn("could not forget the subscriptions", "err", err)
			}
		}
		return
	}
	now := subscriptionSet(cfg.Subscriptions)
	var unsub []string
	if prev != "" && prev != now {
		for _, line := range strings.Split(prev, "\n") {
			filter := line[:max(0, strings.LastIndexByte(line, ':'))]
			if !slices.ContainsFunc(cfg.Subscriptions, func(s codec.Subscription) bool { return s.Filter == filter }) {
				unsub = append(unsub, filter)
			}
		}
	}
	scfg.CleanStart = false
	var lastID uint16
	if raw, err := w.q.Note(packetIDNote); err == nil && len(raw) == 2 {
		lastID = binary.BigEndian.Uint16(raw)
	}
	scfg.Downlink = session.DownlinkConfig{
		LastPacketID:   lastID,
		Subscriptions:  cfg.Subscriptions,
		Resubscribe:    prev != now,
		Unsubscribe:    unsub,
		Wait:           cfg.DownlinkWait,
		SessionExpiry:  uint32(cfg.SessionExpiry / time.Second),
		ReceiveMaximum: downlinkReceiveMaximum,
		OnSuback: func(granted []byte, unsubscribed bool) {
			if unsubscribed || slices.ContainsFunc(granted, func(c byte) bool { return c >= 0x80 }) {
				return // a refused filter is asked for again next window
			}
			if err := w.q.UpdateNote(subscriptionsNote, func([]byte) ([]byte, error) { return []byte(now), nil }); err != nil {
				w.log.Warn("could not remember the granted subscriptions; the next window subscribes again", "err", err)
			}
		},
	}
}

// downlinkResult puts what the broker delivered into the summary.
func (w *window) downlinkResult(d session.DownlinkResult) {
	if len(w.cfg.Subscriptions) > 0 && d.LastPacketID != 0 {
		id := binary.BigEndian.AppendUint16(nil, d.LastPacketID)
		if err := w.q.UpdateNote(packetIDNote, func([]byte) ([]byte, error) { return id, nil }); err != nil {
			w.log.Warn("could not remember the last packet id", "err", err)
		}
	}
	w.sum.DownlinkMessages = d.Messages
	w.sum.DownlinkBytes = d.Bytes
	w.sum.DownlinkDuplicates = d.Duplicates
	w.sum.DownlinkRefused = d.Refused
}

// runInboxHook runs Config.InboxHook once per message in the inbox, oldest
// first, after the window (the radio is off). A message leaves the inbox
// only when the hook exits 0; a failure is counted on the message and it is
// tried again after the next window, until InboxHookAttempts failures.
// Nothing here fails the window.
func (w *window) runInboxHook(ctx context.Context) {
	if w.cfg.InboxHook == "" {
		return
	}
	res, err := RunInboxHook(ctx, w.cfg, w.q, w.log)
	w.sum.HookOK, w.sum.HookFailed = res.OK, res.Failed
	if err != nil {
		w.log.Warn("inbox hook stopped", "err", err)
	}
}

// InboxHookResult counts one pass of the inbox hook.
type InboxHookResult struct {
	OK      int // messages handled (exit 0) and removed
	Failed  int // runs that failed; the messages stay
	Skipped int // messages past the attempt cap (uploader inbox ack removes them)
}

// inboxPage bounds one read of the inbox.
const inboxPage = 64

// RunInboxHook runs cfg.InboxHook for every message in q's inbox, one at a
// time: payload on stdin, UPLOADER_INBOX_TOPIC, _ID, _QOS, _RETAIN (0 or
// 1), _RECEIVED_AT (RFC 3339) and _ATTEMPT (1 for the first run) in the
// environment. Exit 0 removes the message; anything else (or a run longer
// than InboxHookTimeout, whose process group is then killed) keeps it and
// counts the failure.
func RunInboxHook(ctx context.Context, cfg Config, q *queue.Queue, log *slog.Logger) (InboxHookResult, error) {
	var res InboxHookResult
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attempts := cfg.InboxHookAttempts
	if attempts <= 0 {
		attempts = DefaultInboxHookAttempts
	}
	timeout := cfg.InboxHookTimeout
	if timeout <= 0 {
		timeout = DefaultInboxHookTimeout
	}
	for after := uint64(0); ; {
		page, err := q.Inbox(after, inboxPage)
		if err != nil {
			return res, err
		}
		for _, m := range page {
			after = m.ID
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if m.Attempts >= attempts {
				res.Skipped++
				log.Debug("inbox message past the hook's attempt cap; left for uploader inbox ack", "id", m.ID, "attempts", m.Attempts)
				continue
			}
			out, herr := runHook(ctx, cfg.InboxHook, m, timeout)
			if herr == nil {
				if _, err := q.AckInbox(m.ID); err != nil {
					return res, fmt.Errorf("remove handled inbox message %d: %w", m.ID, err)
				}
				res.OK++
				log.Info("inbox hook handled a message", "id", m.ID, "topic", m.Topic, "output", out)
				continue
			}
			res.Failed++
			n, err := q.InboxFailed(m.ID, herr.Error())
			if err != nil {
				return res, fmt.Errorf("count failed hook run of inbox message %d: %w", m.ID, err)
			}
			level, what := slog.LevelWarn, "inbox hook failed; the message stays and is tried after the next window"
			if n >= attempts {
				level, what = slog.LevelError, "inbox hook failed for the last time; the message stays until uploader inbox ack"
			}
			log.Log(ctx, level, what, "id", m.ID, "topic", m.Topic, "attempt", n, "of", attempts, "err", herr, "output", out)
		}
		if len(page) < inboxPage {
			return res, nil
		}
	}
}

// hookOutputMax bounds what is kept of a hook's output for the log.
const hookOutputMax = 2048

// runHook runs one hook for m and returns its (bounded) output.
func runHook(ctx context.Context, command string, m queue.InboxMessage, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdin = bytes.NewReader(m.Payload)
	retain := "0"
	if m.Retain {
		retain = "1"
	}
	cmd.Env = append(os.Environ(),
		"UPLOADER_INBOX_TOPIC="+m.Topic,
		"UPLOADER_INBOX_ID="+strconv.FormatUint(m.ID, 10),
		"UPLOADER_INBOX_QOS="+strconv.Itoa(int(m.QoS)),
		"UPLOADER_INBOX_RETAIN="+retain,
		"UPLOADER_INBOX_RECEIVED_AT="+m.ReceivedAt.UTC().Format(time.RFC3339Nano),
		"UPLOADER_INBOX_ATTEMPT="+strconv.Itoa(m.Attempts+1),
	)
	out := &boundedBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	// The hook may start children: the whole group goes on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	switch {
	case err == nil:
		return text, nil
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return text, fmt.Errorf("hook ran longer than %s and was killed", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return text, fmt.Errorf("hook exited with %s", ee.ProcessState)
	}
	return text, fmt.Errorf("run hook: %w", err)
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	if b.buf.Len()+len(p) > b.max {
		b.cut = true
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	if b.cut {
		return b.buf.String() + " [...]"
	}
	return b.buf.String()
}

// inboxStatus is the status record's inbox part; nil without subscriptions
// and an empty inbox that never received anything.
func (w *window) inboxStatus() *InboxStatus {
	st, err := w.q.InboxStats()
	if err != nil {
		w.log.Debug("no inbox counters for the status record", "err", err)
		return nil
	}
	if len(w.cfg.Subscriptions) == 0 && st.Messages == 0 && st.Received == 0 {
		return nil
	}
	s := &InboxStatus{Messages: st.Messages, Bytes: st.Bytes, Received: st.Received, Refused: st.Refused, HookFailures: st.HookFailures}
	if raw, err := w.q.WindowSummary(); err == nil {
		if prev, err := ParseSummary(raw); err == nil && prev != nil {
			s.LastWindowMessages, s.LastWindowBytes = prev.DownlinkMessages, prev.DownlinkBytes
		}
	}
	return s
}
