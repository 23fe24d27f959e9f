// The team's shared oracle harness, with two added modes (-each, -compare).
//
// Reference oracle for semver tag selection with Flux's semantics:
// Masterminds/semver v3 constraints, tags must have three dot-separated parts
// before lenient parsing, the original tag is returned, ties go to the first tag.
//
//	oracle RANGE < tags.txt     prints the selected tag, or "" when none matches;
//	                            prints "ERR <message>" and exits 2 for an invalid range.
//	oracle -check RANGE VERSION prints true/false for one version.
//	oracle -each RANGE < tags   prints, per tag line, true/false (Check) or invalid.
//	oracle -compare < pairs     prints, per "A B" line, -1/0/1 (Compare) or invalid.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	semver "github.com/Masterminds/semver/v3"
)

func parseTag(t string) (*semver.Version, error) {
	if len(strings.SplitN(t, ".", 3)) != 3 {
		return nil, fmt.Errorf("not three parts")
	}
	return semver.NewVersion(t)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-check" {
		c, err := semver.NewConstraint(os.Args[2])
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		v, err := parseTag(os.Args[3])
		fmt.Println(err == nil && c.Check(v))
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "-compare" {
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			pair := strings.Fields(sc.Text())
			if len(pair) != 2 {
				fmt.Fprintln(out, "invalid")
				continue
			}
			a, errA := parseTag(pair[0])
			b, errB := parseTag(pair[1])
			if errA != nil || errB != nil {
				fmt.Fprintln(out, "invalid")
				continue
			}
			fmt.Fprintln(out, a.Compare(b))
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "-each" {
		c, err := semver.NewConstraint(os.Args[2])
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			v, err := parseTag(strings.TrimSpace(sc.Text()))
			switch {
			case err != nil:
				fmt.Fprintln(out, "invalid")
			default:
				fmt.Fprintln(out, c.Check(v))
			}
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: oracle RANGE < tags | oracle -check RANGE VERSION")
		os.Exit(2)
	}
	c, err := semver.NewConstraint(os.Args[1])
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var best *semver.Version
	bestTag := ""
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		v, err := parseTag(t)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestTag = v, t
		}
	}
	fmt.Println(bestTag)
}
