# A deny outside syncbridge.*: the query would not see it, so it must not pass silently.
package other

deny contains "never seen"
