//go:build ignore

// Command gencommon writes common.txt, the list of passwords that Check rejects
// as "common". It is kept beside the list so that the list can be reviewed as
// the small set of human habits it encodes (a popular word plus a popular
// suffix, a keyboard walk, a season and a year) rather than as an opaque blob,
// and so that adding a habit is a one-line change followed by `go generate`.
//
// Every entry is lower case because Check compares case-insensitively, and at
// least MinLength characters long because shorter passwords are already rejected for
// their length and would only make the list bigger.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// minLength mirrors password.MinLength. The generator cannot import the
// package, because the package does not build while common.txt is missing.
const minLength = 8

// whole lists passwords that are common exactly as written, most of them long
// enough on their own and reported again and again in breach corpora.
var whole = []string{
	"password", "password1", "password12", "password123", "password1234",
	"passw0rd", "p@ssword", "p@ssw0rd", "pa$$word", "pa$$w0rd", "p4ssw0rd",
	"p4ssword", "passwort", "motdepasse", "contrasena", "contraseña", "senha123",
	"12345678", "123456789", "1234567890", "0123456789", "01234567",
	"87654321", "987654321", "9876543210", "12341234", "11223344",
	"12344321", "123123123", "123321123", "147258369", "741852963",
	"159753159", "123456123", "112233445566", "123654789", "147852369",
	"qwertyui", "qwertyuiop", "qwerty123", "qwerty1234", "qwerty12345",
	"qwertyuiop123", "asdfghjk", "asdfghjkl", "asdfasdf", "zxcvbnm1",
	"zxcvbnm123", "1q2w3e4r", "1q2w3e4r5t", "1q2w3e4r5t6y", "q1w2e3r4",
	"q1w2e3r4t5", "qazwsxedc", "1qaz2wsx", "1qaz2wsx3edc", "1qazxsw2",
	"zaq12wsx", "zaq1zaq1", "!qaz2wsx", "qwer1234", "asdf1234", "zxcv1234",
	"azertyuiop", "qwertzuiop", "azerty123", "qweasdzxc", "qweasd123",
	"abcdefgh", "abcdefghi", "abcdefghij", "abcd1234", "abc12345",
	"abcde12345", "a1b2c3d4", "a1b2c3d4e5", "aa123456", "aaaaaaaa",
	"iloveyou", "iloveyou1", "iloveyou2", "iloveyou!", "iloveu123",
	"trustno1", "letmein1", "letmein123", "welcome1", "welcome123",
	"changeme", "changeme1", "changeme123", "administrator", "adminadmin",
	"admin123", "admin1234", "admin12345", "rootroot", "root1234",
	"toortoor", "default1", "guest123", "test1234", "testtest", "test12345",
	"testing1", "testing123", "temp1234", "temppass", "secret12",
	"secret123", "mypassword", "mypassword1", "newpassword", "newpass1",
	"opensesame", "whatever", "whatever1", "nopassword", "blahblah",
	"football1", "baseball1", "basketball", "superman", "starwars",
	"sunshine", "princess", "computer", "corvette", "mercedes", "internet",
	"maverick", "michelle", "jennifer", "jordan23", "michael1", "1234qwer",
	"qwertyqwerty", "passwordpassword", "loveyou1", "fuckyou1", "fuckoff1",
	"letmeinplease", "helloworld", "hello123", "hello1234", "goodluck",
	"sweetheart", "butterfly", "chocolate", "cheesecake", "pokemon1",
	"minecraft", "minecraft1", "fortnite", "fortnite1", "playstation",
	"nintendo", "xbox360x", "starwars1", "skywalker", "batman123",
	"spiderman", "ironman1", "harrypotter", "hogwarts", "gandalf1",
	"nirvana1", "metallica", "liverpool", "chelsea1", "arsenal1",
	"manchester", "barcelona", "realmadrid", "juventus", "newyork1",
	"california", "australia", "victoria", "elizabeth", "alexander",
	"christopher", "jessica1", "samantha", "danielle", "nicholas",
	"benjamin", "jonathan", "margaret", "stephanie", "veronica",
	"qwerty123456", "1q2w3e4r5t6y7u", "zxcvbnmasdfghjkl", "1111111111",
	"voxanne1", "voxanne123", "supabase", "supabase1", "supabase123",
}

// bases are popular words and names. Alone they are often shorter than
// minLength; people stretch them to the minimum with a predictable suffix.
var bases = []string{
	"password", "pass", "letmein", "welcome", "admin", "login", "qwerty",
	"abc", "iloveyou", "monkey", "dragon", "master", "shadow", "sunshine",
	"princess", "football", "baseball", "soccer", "hockey", "jordan",
	"michael", "superman", "batman", "trustno1", "hunter", "ranger",
	"buster", "tigger", "charlie", "thomas", "robert", "daniel", "andrew",
	"joshua", "matthew", "jessica", "ashley", "amanda", "jennifer",
	"michelle", "hannah", "nicole", "summer", "winter", "spring", "autumn",
	"freedom", "flower", "cookie", "pepper", "ginger", "maggie", "killer",
	"love", "lovely", "angel", "baby", "family", "friends", "secret",
	"money", "purple", "orange", "banana", "cheese", "coffee", "chicken",
	"silver", "golden", "diamond", "matrix", "access", "computer", "internet",
	"google", "apple", "samsung", "yankees", "cowboys", "eagles",
	"steelers", "lakers", "dallas", "london", "paris", "berlin", "mustang",
	"ferrari", "harley", "starwars", "pokemon", "naruto", "snoopy", "mickey",
	"peanut", "butter", "biteme", "asshole", "fuckyou", "whatever", "zxcvbnm",
	"asdf", "qwer", "test", "temp", "guest", "user", "root", "demo", "hello",
	"changeme", "default", "system", "server", "office", "company",
	"voxanne", "support", "service", "manager", "student", "teacher",
}

// suffixes are the endings that breach corpora show people append most often.
var suffixes = []string{
	"", "1", "12", "123", "1234", "12345", "123456", "!", "1!", "123!",
	"01", "69", "7", "11", "22", "99", "00", "@123", "#1", "2000",
}

// seasonal words are combined with recent years because password-rotation
// policies teach people exactly that pattern.
var seasonal = []string{
	"password", "welcome", "summer", "winter", "spring", "autumn", "fall",
	"january", "february", "march", "april", "may", "june", "july",
	"august", "september", "october", "november", "december", "monday",
	"friday", "company", "letmein", "voxanne",
}

// leet applies the substitutions people believe make a word strong.
var leet = strings.NewReplacer("a", "@", "o", "0", "e", "3", "i", "1", "s", "$")

func main() {
	set := map[string]bool{}
	add := func(s string) {
		s = strings.ToLower(s)
		if utf8.RuneCountInString(s) >= minLength {
			set[s] = true
		}
	}
	for _, w := range whole {
		add(w)
	}
	for _, b := range bases {
		for _, s := range suffixes {
			add(b + s)
		}
		// Substituted spellings are rarer, so only the commonest endings.
		for _, s := range suffixes[:5] {
			add(leet.Replace(b) + s)
		}
		add(b + b)
	}
	for _, w := range seasonal {
		for y := 1990; y <= 2030; y++ {
			add(fmt.Sprintf("%s%d", w, y))
			add(fmt.Sprintf("%s%d!", w, y))
			add(fmt.Sprintf("%s%02d", w, y%100))
		}
	}
	// Runs of one repeated character and short repeated digit groups.
	for _, c := range "0123456789abcdefghijklmnopqrstuvwxyz" {
		for n := minLength; n <= 12; n++ {
			add(strings.Repeat(string(c), n))
		}
	}
	for _, g := range []string{"12", "123", "1234", "69", "007", "abc", "xo"} {
		for r := 2; r <= 5; r++ {
			add(strings.Repeat(g, r))
		}
	}

	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	slices.Sort(list)

	f, err := os.Create("common.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	for _, s := range list {
		fmt.Fprintln(w, s)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
