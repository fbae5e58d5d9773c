# bash completion for gpuctl                                  -*- shell-script -*-
#
# Installed as share/bash-completion/completions/gpuctl; it can also be
# sourced directly.  It needs nothing from the bash-completion package.
#
# Node names come from the cluster: `gpuctl __complete nodes`, given the
# connection flags already on the command line (--kubeconfig, --context,
# --cluster, --user, -s/--server, --token, -n/--namespace).  When the cluster
# cannot be reached that command fails silently and nothing is offered.

_gpuctl_commands="label taint deploy slice smoke-test validate cleanup help"

# Global options (any command), those that take a value, and the flags that
# are passed through to `gpuctl __complete nodes`.
_gpuctl_global_opts="--kubeconfig --context --cluster --user -n --namespace -s --server
	--token --insecure-skip-tls-verify --request-timeout --chunk-size -o --output --config --templates
	-v --verbose -h --help"
_gpuctl_arg_opts="--kubeconfig --context --cluster --user -n --namespace -s --server
	--token --request-timeout --chunk-size -o --output --config --templates -l --selector"
_gpuctl_conn_opts="--kubeconfig --context --cluster --user -n --namespace -s --server --token"
_gpuctl_node_opts="-l --selector --all --overwrite --dry-run --dry-run="
# deploy: its options, and those of them that take a value.
_gpuctl_deploy_opts="-l --selector --only --skip --inventory --ssh-user -i --identity --ssh-port
	--ssh-timeout --ssh-accept-new -J --ssh-jump --known-hosts --parallel --default-runtime --min-driver
	--from-inventory --restart-command --check-command --with --plugin-version --registry --operator --timeout
	--render --diff --dry-run --dry-run="
_gpuctl_deploy_arg_opts="--only --skip --inventory --ssh-user -i --identity --ssh-port --ssh-timeout
	-J --ssh-jump --known-hosts --parallel --min-driver --restart-command --check-command --with --plugin-version
	--registry --timeout"
_gpuctl_deploy_phases=$'nodes\nruntimeclass\nplugin\ngfd\ndcgm-exporter'
# validate: its options, and those of them that take a value.
_gpuctl_validate_opts="-l --selector --only --skip --junit --list --strict --admit --smoke --smoke-image --smoke-timeout --inventory --ssh-user -i --identity
	--ssh-port --ssh-timeout --ssh-accept-new -J --ssh-jump --known-hosts --parallel --min-driver --from-inventory"
_gpuctl_validate_arg_opts="--only --skip --junit --smoke-image --smoke-timeout --inventory --ssh-user -i --identity --ssh-port
	--ssh-timeout -J --ssh-jump --known-hosts --parallel --min-driver"
_gpuctl_validate_groups=$'cluster\nnodes'
# slice: its options, those of them that take a value, the models and profiles.
_gpuctl_slice_opts="-l --selector --replicas --profile --rename --fail-requests-greater-than-one --mig-strategy
	--mig-config --timeout --no-wait --dry-run --dry-run="
_gpuctl_slice_arg_opts="--replicas --profile --mig-strategy --mig-config --timeout"
_gpuctl_slice_models=$'time-slicing\nmps\nmig\nnone'
_gpuctl_slice_profiles=$'any\nhigh-memory\nhigh-density'
# smoke-test: its options, and those of them that take a value.
_gpuctl_smoke_opts="-l --selector --image --toleration --pods --no-sharing --measure --measure-seconds --keep --timeout --junit"
_gpuctl_smoke_arg_opts="--image --toleration --pods --timeout --junit"
# cleanup: its options, and those of them that take a value.
_gpuctl_cleanup_opts="-l --selector --only --skip --force --inventory --ssh-user -i --identity --ssh-port
	--ssh-timeout --ssh-accept-new -J --ssh-jump --known-hosts --parallel --min-driver --from-inventory
	--restart-command --check-command --timeout --dry-run --dry-run="
_gpuctl_cleanup_arg_opts="--only --skip --force --inventory --ssh-user -i --identity --ssh-port --ssh-timeout
	-J --ssh-jump --known-hosts --parallel --min-driver --restart-command --check-command --timeout"
_gpuctl_cleanup_groups=$'cluster\nlabels\nnodes'
_gpuctl_taint_effects=$'NoSchedule\nPreferNoSchedule\nNoExecute'

# _gpuctl_in WORD LIST: whether WORD is one of the words of LIST.
_gpuctl_in()
{
	local w
	for w in $2; do
		[[ $w == "$1" ]] && return 0
	done
	return 1
}

# Rebuild the words that bash split at '=' and ':' (COMP_WORDBREAKS), so that
# --opt=value and KEY=VALUE:EFFECT are one word each.  Sets _gpuctl_words and
# _gpuctl_cword.  (The same approach as git's completion.)
_gpuctl_reassemble()
{
	local exclude=${COMP_WORDBREAKS//[^=:]/} i j first
	_gpuctl_words=()
	_gpuctl_cword=$COMP_CWORD
	if [[ -z $exclude ]]; then
		_gpuctl_words=("${COMP_WORDS[@]}")
		return
	fi
	for ((i = 0, j = 0; i < ${#COMP_WORDS[@]}; i++, j++)); do
		first=t
		while ((i > 0)) && [[ -n ${COMP_WORDS[i]} &&
			${COMP_WORDS[i]//[^$exclude]/} == "${COMP_WORDS[i]}" ]]; do
			# a word of separators only: glue it to the previous word
			# (not to the command name) and the next word to it
			if ((j >= 2)) && [[ -n $first ]]; then
				((j--))
			fi
			first=
			_gpuctl_words[j]=${_gpuctl_words[j]-}${COMP_WORDS[i]}
			((i == COMP_CWORD)) && _gpuctl_cword=$j
			if ((i < ${#COMP_WORDS[@]} - 1)); then
				((i++))
			else
				return
			fi
		done
		_gpuctl_words[j]=${_gpuctl_words[j]-}${COMP_WORDS[i]}
		((i == COMP_CWORD)) && _gpuctl_cword=$j
	done
}

# Remove simple quoting and expand a leading ~ in a word typed on the line.
_gpuctl_dequote()
{
	local w=$1
	if [[ $w == \"*\" || $w == \'*\' ]]; then
		w=${w:1:${#w}-2}
	fi
	w=${w//\\ / }
	[[ $w == \~/* || $w == \~ ]] && w=$HOME${w:1}
	printf '%s' "$w"
}

# Print node names, one a line: `gpuctl __complete nodes` with the connection
# flags found on the command line.  Nothing when it fails.
_gpuctl_nodes()
{
	local prog=${_gpuctl_words[0]} i w next flags=() out
	[[ $prog == \~/* ]] && prog=$HOME${prog:1}
	[[ -n $prog ]] || prog=gpuctl
	for ((i = 1; i < _gpuctl_cword; i++)); do
		w=${_gpuctl_words[i]}
		[[ $w == -- ]] && break
		if _gpuctl_in "$w" "$_gpuctl_conn_opts"; then
			((i + 1 < _gpuctl_cword)) || break
			next=$(_gpuctl_dequote "${_gpuctl_words[i + 1]}")
			flags+=("$w" "$next")
			((i++))
		elif [[ $w == --*=* ]] && _gpuctl_in "${w%%=*}" "$_gpuctl_conn_opts"; then
			flags+=("${w%%=*}=$(_gpuctl_dequote "${w#*=}")")
		elif [[ $w == -[ns]?* ]]; then
			flags+=("${w:0:2}" "$(_gpuctl_dequote "${w:2}")")
		elif _gpuctl_in "$w" "${_gpuctl_argopts-$_gpuctl_arg_opts}"; then
			((i++))
		fi
	done
	out=$("$prog" __complete nodes "${flags[@]}" 2>/dev/null) || return 0
	printf '%s\n' "$out"
}

# Print the kubeconfig contexts (kubectl config get-contexts -o name).
_gpuctl_contexts()
{
	command -v kubectl >/dev/null 2>&1 || return 0
	local i w kc=()
	for ((i = 1; i < _gpuctl_cword; i++)); do
		w=${_gpuctl_words[i]}
		if [[ $w == --kubeconfig ]] && ((i + 1 < _gpuctl_cword)); then
			kc=(--kubeconfig "$(_gpuctl_dequote "${_gpuctl_words[i + 1]}")")
		elif [[ $w == --kubeconfig=* ]]; then
			kc=(--kubeconfig "$(_gpuctl_dequote "${w#*=}")")
		fi
	done
	kubectl config get-contexts -o name "${kc[@]}" 2>/dev/null
}

# Set COMPREPLY to the words of $2 (one per line) that start with $1, less
# the part of $1 that bash does not replace (up to its last '=' or ':' when
# those break words).
_gpuctl_reply()
{
	local cur=$1 c keep=
	local breaks=${COMP_WORDBREAKS//[^=:]/}
	[[ -n $breaks && $cur == *[$breaks]* ]] && keep=${cur%"${cur##*[$breaks]}"}
	COMPREPLY=()
	while IFS= read -r c; do
		[[ -n $c && $c == "$cur"* ]] && COMPREPLY+=("${c#"$keep"}")
	done <<<"$2"
}

# Print each line of $2 with $1 in front.
_gpuctl_prefix()
{
	local line
	[[ -n $2 ]] || return 0
	while IFS= read -r line; do
		printf '%s%s\n' "$1" "$line"
	done <<<"$2"
}

# Complete the value of an option: $1 the option, $2 what precedes the value
# in the word ("" or "--opt="), $3 the value typed so far, $4 the command.
_gpuctl_value()
{
	local opt=$1 own=
	# deploy's, validate's and cleanup's options are options of their command only
	case $4 in
	deploy) own=$_gpuctl_deploy_arg_opts ;;
	validate) own=$_gpuctl_validate_arg_opts ;;
	slice) own=$_gpuctl_slice_arg_opts ;;
	smoke-test) own=$_gpuctl_smoke_arg_opts ;;
	cleanup) own=$_gpuctl_cleanup_arg_opts ;;
	esac
	if _gpuctl_in "$opt" "$_gpuctl_deploy_arg_opts $_gpuctl_validate_arg_opts $_gpuctl_slice_arg_opts $_gpuctl_smoke_arg_opts $_gpuctl_cleanup_arg_opts" &&
		! _gpuctl_in "$opt" "$own"; then
		opt=
	fi
	[[ $4 == validate && $opt == --dry-run ]] && opt=
	case $opt in
	--kubeconfig | --config | --inventory | -i | --identity | --known-hosts | --junit)
		compopt -o filenames 2>/dev/null
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$(compgen -f -- "$3")")"
		;;
	--only | --skip)
		if [[ $4 == validate ]]; then
			_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$_gpuctl_validate_groups")"
		elif [[ $4 == cleanup ]]; then
			_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$_gpuctl_cleanup_groups")"
		else
			_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$_gpuctl_deploy_phases")"
		fi
		;;
	--templates)
		compopt -o filenames 2>/dev/null
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$(compgen -d -- "$3")")"
		;;
	--context)
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$(_gpuctl_contexts)")"
		;;
	-o | --output)
		if [[ $4 == validate ]]; then
			_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" $'json\nyaml\njunit')"
		else
			_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" $'json\nyaml')"
		fi
		;;
	--dry-run)
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" $'none\nclient\nserver')"
		;;
	--mig-strategy)
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" $'single\nmixed')"
		;;
	--profile)
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" "$_gpuctl_slice_profiles")"
		;;
	--force)
		# KIND/NAME is typed; the one word is offered
		_gpuctl_reply "$2$3" "$(_gpuctl_prefix "$2" nodes)"
		;;
	*)
		COMPREPLY=()
		;;
	esac
}

_gpuctl()
{
	local _gpuctl_words _gpuctl_cword
	_gpuctl_reassemble
	local cur=${_gpuctl_words[_gpuctl_cword]-} prev=
	((_gpuctl_cword > 0)) && prev=${_gpuctl_words[_gpuctl_cword - 1]-}
	COMPREPLY=()

	# The command: the first word that is not an option or an option's value.
	# _gpuctl_argopts: the options that take a value, the command's included.
	local i w cmd= cmdi=0 dashdash= all= _gpuctl_argopts=$_gpuctl_arg_opts
	for ((i = 1; i < _gpuctl_cword; i++)); do
		w=${_gpuctl_words[i]}
		if [[ -n $cmd ]]; then
			[[ $w == -- ]] && dashdash=t
			[[ -z $dashdash && $w == --all ]] && all=t
			[[ -z $dashdash ]] && _gpuctl_in "$w" "$_gpuctl_argopts" && ((i++))
			continue
		fi
		if _gpuctl_in "$w" "$_gpuctl_arg_opts"; then
			((i++))
		elif [[ $w == --version || $w == --help || $w == -h ]]; then
			return 0 # nothing follows these
		elif [[ $w != -* ]]; then
			cmd=$w
			cmdi=$i
			[[ $cmd == deploy ]] && _gpuctl_argopts+=" $_gpuctl_deploy_arg_opts"
			[[ $cmd == validate ]] && _gpuctl_argopts+=" $_gpuctl_validate_arg_opts"
			[[ $cmd == slice ]] && _gpuctl_argopts+=" $_gpuctl_slice_arg_opts"
			[[ $cmd == smoke-test ]] && _gpuctl_argopts+=" $_gpuctl_smoke_arg_opts"
			[[ $cmd == cleanup ]] && _gpuctl_argopts+=" $_gpuctl_cleanup_arg_opts"
		fi
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			_gpuctl_reply "$cur" "$(printf '%s\n' --version --help)"
		else
			_gpuctl_reply "$cur" "$(printf '%s\n' $_gpuctl_commands)"
		fi
		return 0
	fi

	if [[ $cmd == help ]]; then
		if ((_gpuctl_cword == cmdi + 1)) && [[ $cur != -* ]]; then
			_gpuctl_reply "$cur" "$(printf '%s\n' ${_gpuctl_commands% help})"
		fi
		return 0
	fi

	# The value of an option: "--opt VALUE" or "--opt=VALUE".
	if [[ -z $dashdash ]]; then
		if _gpuctl_in "$prev" "$_gpuctl_argopts" && ((_gpuctl_cword - 1 > cmdi)); then
			_gpuctl_value "$prev" "" "$cur" "$cmd"
			return 0
		fi
		if [[ $cur == --*=* ]]; then
			_gpuctl_value "${cur%%=*}" "${cur%%=*}=" "${cur#*=}" "$cmd"
			return 0
		fi
		if [[ $cur == -* ]]; then
			local opts=$_gpuctl_global_opts
			case $cmd in
			label) opts+=" $_gpuctl_node_opts --taint --taint=" ;;
			taint) opts+=" $_gpuctl_node_opts --until-validated" ;;
			deploy) opts+=" $_gpuctl_deploy_opts" ;;
			validate) opts+=" $_gpuctl_validate_opts" ;;
			slice) opts+=" $_gpuctl_slice_opts" ;;
			smoke-test) opts+=" $_gpuctl_smoke_opts" ;;
			cleanup) opts+=" $_gpuctl_cleanup_opts" ;;
			esac
			_gpuctl_reply "$cur" "$(printf '%s\n' $opts)"
			# "--dry-run=" waits for its value
			[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] &&
				compopt -o nospace 2>/dev/null
			return 0
		fi
	fi

	# Arguments.
	case $cmd in
	taint)
		if [[ $cur == *:* ]]; then
			# KEY[=VALUE]:EFFECT
			_gpuctl_reply "$cur" "$(_gpuctl_prefix "${cur%:*}:" "$_gpuctl_taint_effects")"
			return 0
		fi
		;&
	slice | label | deploy | validate | cleanup | smoke-test)
		# KEY=VALUE and KEY- are not completed; node names are.
		[[ $cur == *=* || -n $all ]] && return 0
		local nodes n seen list=
		# slice: the model comes first, before any node
		if [[ $cmd == slice ]]; then
			local have_arg=
			for ((i = cmdi + 1; i < _gpuctl_cword; i++)); do
				w=${_gpuctl_words[i]}
				if _gpuctl_in "$w" "$_gpuctl_argopts"; then
					((i++))
				elif [[ $w != -* ]]; then
					have_arg=t
				fi
			done
			[[ -z $have_arg ]] && list=$_gpuctl_slice_models$'\n'
		fi
		nodes=$(_gpuctl_nodes)
		for n in $nodes; do
			seen=
			for ((i = cmdi + 1; i < _gpuctl_cword; i++)); do
				[[ ${_gpuctl_words[i]} == "$n" ]] && seen=t && break
			done
			[[ -z $seen ]] && list+=$n$'\n'
		done
		_gpuctl_reply "$cur" "$list"
		;;
	esac
	return 0
}

complete -F _gpuctl gpuctl
