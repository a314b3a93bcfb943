package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The scripts ask the binary itself for the candidates (urfave/cli's
// --generate-bash-completion), so they follow the commands and flags of
// the installed version without being regenerated.
const bashCompletion = `# bash completion for zerohop. Load it with
#   source <(zerohop completion bash)
# or install it: zerohop completion bash > /etc/bash_completion.d/zerohop
_zerohop_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local args=("${COMP_WORDS[@]:0:COMP_CWORD}")
  [[ "$cur" == -* ]] && args+=("$cur")
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _zerohop_complete zerohop
`

const zshCompletion = `#compdef zerohop
# zsh completion for zerohop. Load it with
#   source <(zerohop completion zsh)
# or install it as _zerohop in a directory of $fpath.
_zerohop() {
  local -a opts
  local cur=${words[-1]}
  local -a args=(${words[@]:0:#words[@]-1})
  [[ "$cur" == -* ]] && args+=("$cur")
  opts=("${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${args[@]} --generate-bash-completion 2>/dev/null)}")
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _zerohop zerohop
`

func newCompletionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load completion in the current shell:\n\n" +
			"   source <(zerohop completion bash)   # or zsh\n" +
			"   zerohop completion fish | source",
		Action: func(c *cli.Context) error {
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.App.Writer, s)
				return err
			default:
				return fmt.Errorf("completion: want one of %s, got %q", strings.Join([]string{"bash", "zsh", "fish"}, ", "), sh)
			}
		},
		BashComplete: func(c *cli.Context) {
			for _, s := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, s)
			}
		},
	}
}
