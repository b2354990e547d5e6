package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/go-gpiocdev"
)

// gpioLineRef is a resolved chip + offset.
type gpioLineRef struct {
	chip   string // chip name as gpiocdev wants it ("gpiochip0")
	label  string
	offset int
}

func (r gpioLineRef) String() string {
	return fmt.Sprintf("%s [%s] line %d", r.chip, r.label, r.offset)
}

// resolveGPIOLine finds a line from configuration. chip may be a chip label
// ("pinctrl-bcm2711", "intercomd-sim"), a chip name ("gpiochip0") or a path
// ("/dev/gpiochip0"); empty means "search every chip for the line name".
// line is an offset ("17") or a line name ("GPIO17"). Chip numbers differ
// between boards and kernels, so labels and names are what configs should
// use. A missing chip or line is an error wrapping ErrUnavailable that names
// what was asked for and what exists.
func resolveGPIOLine(chip, line string) (gpioLineRef, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return gpioLineRef{}, fmt.Errorf("gpio: no line given (chip %q)", chip)
	}
	if chip == "" {
		if _, err := strconv.Atoi(line); err == nil {
			return gpioLineRef{}, fmt.Errorf("gpio: line offset %s needs a chip (label, name or path)", line)
		}
		name, off, err := gpiocdev.FindLine(line)
		if err != nil {
			return gpioLineRef{}, fmt.Errorf("gpio: no line named %q on any chip (%s): %w", line, describeChips(), ErrUnavailable)
		}
		c, err := gpiocdev.NewChip(name)
		if err != nil {
			return gpioLineRef{}, fmt.Errorf("gpio: open %s for line %q: %w", name, line, errors.Join(err, ErrUnavailable))
		}
		defer c.Close()
		return gpioLineRef{chip: c.Name, label: c.Label, offset: off}, nil
	}
	c, err := openGPIOChip(chip)
	if err != nil {
		return gpioLineRef{}, err
	}
	defer c.Close()
	ref := gpioLineRef{chip: c.Name, label: c.Label}
	if off, err := strconv.Atoi(line); err == nil {
		if off < 0 || off >= c.Lines() {
			return gpioLineRef{}, fmt.Errorf("gpio: chip %q (%s) has lines 0-%d, not %d: %w", chip, c.Name, c.Lines()-1, off, ErrUnavailable)
		}
		ref.offset = off
		return ref, nil
	}
	off, err := c.FindLine(line)
	if err != nil {
		return gpioLineRef{}, fmt.Errorf("gpio: chip %q (%s) has no line named %q: %w", chip, c.Name, line, ErrUnavailable)
	}
	ref.offset = off
	return ref, nil
}

// openGPIOChip opens a chip by path, name or label.
func openGPIOChip(chip string) (*gpiocdev.Chip, error) {
	if strings.HasPrefix(chip, "/dev/") || strings.HasPrefix(chip, "gpiochip") {
		c, err := gpiocdev.NewChip(chip, gpiocdev.WithConsumer("intercomd"))
		if err == nil {
			return c, nil
		}
		if strings.HasPrefix(chip, "/dev/") {
			return nil, fmt.Errorf("gpio: open chip %s: %w", chip, errors.Join(err, ErrUnavailable))
		}
		// "gpiochip..." could also be a label; fall through.
	}
	for _, name := range gpiocdev.Chips() {
		c, err := gpiocdev.NewChip(name, gpiocdev.WithConsumer("intercomd"))
		if err != nil {
			continue
		}
		if c.Label == chip {
			return c, nil
		}
		c.Close()
	}
	return nil, fmt.Errorf("gpio: no chip with label or name %q (%s): %w", chip, describeChips(), ErrUnavailable)
}

func describeChips() string {
	names := gpiocdev.Chips()
	if len(names) == 0 {
		return "no GPIO chips present"
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		label := "?"
		if c, err := gpiocdev.NewChip(n); err == nil {
			label = c.Label
			c.Close()
		}
		parts = append(parts, fmt.Sprintf("%s [%s]", n, label))
	}
	return "chips present: " + strings.Join(parts, ", ")
}

// gpioBias maps the config's bias to a request option; "" and "as-is" leave
// the line's bias alone.
func gpioBias(b string) (gpiocdev.LineReqOption, error) {
	switch strings.ToLower(strings.TrimSpace(b)) {
	case "", "as-is":
		return nil, nil
	case "pull-up", "pullup", "up":
		return gpiocdev.WithPullUp, nil
	case "pull-down", "pulldown", "down":
		return gpiocdev.WithPullDown, nil
	case "disabled", "none", "off":
		return gpiocdev.WithBiasDisabled, nil
	}
	return nil, fmt.Errorf("gpio: unknown bias %q (want pull-up, pull-down, disabled or as-is)", b)
}

// gpioDrive maps the config's drive to a request option.
func gpioDrive(d string) (gpiocdev.LineReqOption, error) {
	switch strings.ToLower(strings.TrimSpace(d)) {
	case "", "push-pull":
		return nil, nil
	case "open-drain":
		return gpiocdev.AsOpenDrain, nil
	case "open-source":
		return gpiocdev.AsOpenSource, nil
	}
	return nil, fmt.Errorf("gpio: unknown drive %q (want push-pull, open-drain or open-source)", d)
}
