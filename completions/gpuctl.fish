# fish completion for gpuctl
#
# Installed as share/fish/vendor_completions.d/gpuctl.fish.
#
# Node names come from the cluster: `gpuctl __complete nodes`, given the
# connection flags already on the command line (--kubeconfig, --context,
# --cluster, --user, -s/--server, --token, -n/--namespace).  When the cluster
# cannot be reached that command fails silently and nothing is offered.

# Options that take a value in the next word, and the connection flags that
# are passed through to `gpuctl __complete nodes`.
set -g __gpuctl_arg_opts --kubeconfig --context --cluster --user -n --namespace -s --server \
    --token --request-timeout --chunk-size -o --output --config --templates -l --selector
set -g __gpuctl_conn_opts --kubeconfig --context --cluster --user -n --namespace -s --server --token
# deploy's options that take a value in the next word.
set -g __gpuctl_deploy_arg_opts --only --skip --inventory --ssh-user -i --identity --ssh-port \
    --ssh-timeout -J --ssh-jump --known-hosts --parallel --min-driver --restart-command --check-command \
    --with --plugin-version --registry --timeout
# validate's options that take a value in the next word.
set -g __gpuctl_validate_arg_opts --only --skip --junit --smoke-image --smoke-timeout --inventory --ssh-user -i --identity --ssh-port \
    --ssh-timeout -J --ssh-jump --known-hosts --parallel --min-driver
# slice's options that take a value in the next word.
set -g __gpuctl_slice_arg_opts --replicas --profile --mig-strategy --mig-config --timeout
# smoke-test's options that take a value in the next word.
set -g __gpuctl_smoke_arg_opts --image --toleration --pods --timeout --junit
# cleanup's options that take a value in the next word.
set -g __gpuctl_cleanup_arg_opts --only --skip --force --inventory --ssh-user -i --identity --ssh-port \
    --ssh-timeout -J --ssh-jump --known-hosts --parallel --min-driver --restart-command --check-command --timeout

# The words before the cursor, after the program's name, up to a "--".
function __gpuctl_args
    set -l words (commandline -opc)
    set -e words[1]
    for w in $words
        test "$w" = -- && break
        echo -- $w
    end
end

# The command: the first word that is not an option or an option's value.
function __gpuctl_command
    set -l skip 0
    for w in (__gpuctl_args)
        if test $skip = 1
            set skip 0
        else if contains -- $w $__gpuctl_arg_opts
            set skip 1
        else if not string match -q -- '-*' $w
            echo -- $w
            return 0
        end
    end
    return 1
end

function __gpuctl_needs_command
    __gpuctl_command >/dev/null && return 1
    # nothing follows --version or --help
    set -l words (__gpuctl_args)
    not contains -- --version $words; and not contains -- --help $words; and not contains -- -h $words
end

# __gpuctl_using CMD...: whether the command is one of CMD.
function __gpuctl_using
    set -l cmd (__gpuctl_command) || return 1
    contains -- $cmd $argv
end

# Whether the command line asks for an option's value or for a command.
function __gpuctl_has_options
    set -l cmd (__gpuctl_command) || return 1
    test $cmd != help
end

# The options that take a value in the next word, for the command typed.
function __gpuctl_value_opts
    echo -- $__gpuctl_arg_opts
    __gpuctl_using deploy && echo -- $__gpuctl_deploy_arg_opts
    __gpuctl_using validate && echo -- $__gpuctl_validate_arg_opts
    __gpuctl_using slice && echo -- $__gpuctl_slice_arg_opts
    __gpuctl_using smoke-test && echo -- $__gpuctl_smoke_arg_opts
    __gpuctl_using cleanup && echo -- $__gpuctl_cleanup_arg_opts
end

# The output formats of the command typed.
function __gpuctl_output_formats
    printf '%s\n' json yaml
    __gpuctl_using validate && echo junit
end

# Whether the current word is a plain argument: no option, no KEY=VALUE,
# no KEY:EFFECT, and the option before it takes no value.
function __gpuctl_wants_node
    __gpuctl_using label taint deploy validate slice cleanup smoke-test || return 1
    set -l cur (commandline -ct)
    string match -q -- '-*' $cur && return 1
    string match -q -- '*[=:]*' $cur && return 1
    set -l words (__gpuctl_args)
    contains -- --all $words && return 1
    test (count $words) -gt 0 && contains -- $words[-1] (string split ' ' -- (__gpuctl_value_opts)) && return 1
    return 0
end

function __gpuctl_home
    string replace -r -- '^~(?=/|$)' $HOME $argv[1]
end

# Node names: `gpuctl __complete nodes` with the connection flags typed so far.
function __gpuctl_nodes
    set -l words (commandline -opc)
    set -l prog (__gpuctl_home $words[1])
    set -e words[1]
    set -l flags
    set -l value_opts (string split ' ' -- (__gpuctl_value_opts))
    set -l i 1
    while test $i -le (count $words)
        set -l w $words[$i]
        test "$w" = -- && break
        if contains -- $w $__gpuctl_conn_opts
            set i (math $i + 1)
            test $i -le (count $words) || break
            set -a flags $w (__gpuctl_home $words[$i])
        else if string match -qr -- '^--[a-z]+=' $w
            and contains -- (string split -m1 = -- $w)[1] $__gpuctl_conn_opts
            set -l kv (string split -m1 = -- $w)
            set -a flags $kv[1]=(__gpuctl_home $kv[2])
        else if string match -qr -- '^-[ns].' $w
            set -a flags (string sub -l 2 -- $w) (string sub -s 3 -- $w)
        else if contains -- $w $value_opts
            set i (math $i + 1)
        end
        set i (math $i + 1)
    end
    set -l nodes ($prog __complete nodes $flags 2>/dev/null) || return 0
    for n in $nodes
        contains -- $n $words || printf '%s\tnode\n' $n
    end
end

# KEY[=VALUE]:EFFECT for the current word, once it has a ':'.
function __gpuctl_effects
    set -l cur (commandline -ct)
    string match -q -- '-*' $cur && return
    string match -q -- '*:*' $cur || return
    set -l key (string replace -r -- ':[^:]*$' '' $cur)
    printf "$key:%s\t%s\n" NoSchedule 'no new pods without a toleration' \
        PreferNoSchedule 'avoid scheduling pods without a toleration' \
        NoExecute 'evict pods without a toleration'
end

# Contexts of the kubeconfig (kubectl config get-contexts -o name).
function __gpuctl_contexts
    command -q kubectl || return
    set -l kc
    set -l words (__gpuctl_args)
    for i in (seq (count $words))
        if test $words[$i] = --kubeconfig -a $i -lt (count $words)
            set kc --kubeconfig (__gpuctl_home $words[(math $i + 1)])
        else if string match -q -- '--kubeconfig=*' $words[$i]
            set kc --kubeconfig (__gpuctl_home (string replace -- --kubeconfig= '' $words[$i]))
        end
    end
    kubectl config get-contexts -o name $kc 2>/dev/null
end

complete -c gpuctl -f

# gpuctl [--version] [--help] COMMAND
complete -c gpuctl -n __gpuctl_needs_command -l version -d 'print the version'
complete -c gpuctl -n __gpuctl_needs_command -s h -l help -d 'show help'
complete -c gpuctl -n __gpuctl_needs_command -a label -d 'set or remove labels on GPU nodes'
complete -c gpuctl -n __gpuctl_needs_command -a taint -d 'add or remove taints on GPU nodes'
complete -c gpuctl -n __gpuctl_needs_command -a deploy -d 'prepare GPU nodes over SSH (containerd + nvidia runtime) and the RuntimeClass'
complete -c gpuctl -n __gpuctl_needs_command -a slice -d 'share GPUs (time-slicing, MPS), use MIG, or stop sharing'
complete -c gpuctl -n __gpuctl_needs_command -a smoke-test -d 'run pods on GPU nodes and prove their GPUs work'
complete -c gpuctl -n __gpuctl_needs_command -a validate -d 'check the cluster and its GPU nodes; table, JSON or JUnit report'
complete -c gpuctl -n __gpuctl_needs_command -a cleanup -d 'remove what gpuctl created: objects, labels, taints, containerd changes'
complete -c gpuctl -n __gpuctl_needs_command -a help -d 'show the help of a command'

# gpuctl help COMMAND
complete -c gpuctl -n '__gpuctl_using help; and test (count (__gpuctl_args)) -eq 1' \
    -a 'label taint deploy slice smoke-test validate cleanup'

# Global options, any command.
set -l g __gpuctl_has_options
complete -c gpuctl -n $g -l kubeconfig -r -F -d 'kubeconfig file to use'
complete -c gpuctl -n $g -l context -x -a '(__gpuctl_contexts)' -d 'kubeconfig context to use'
complete -c gpuctl -n $g -l cluster -x -d 'kubeconfig cluster to use'
complete -c gpuctl -n $g -l user -x -d 'kubeconfig user to use'
complete -c gpuctl -n $g -s n -l namespace -x -d 'namespace for namespaced objects'
complete -c gpuctl -n $g -s s -l server -x -d 'API server address'
complete -c gpuctl -n $g -l token -x -d 'bearer token'
complete -c gpuctl -n $g -l insecure-skip-tls-verify -d "do not verify the server's certificate"
complete -c gpuctl -n $g -l request-timeout -x -d 'timeout of one API request, e.g. 30s, 2m'
complete -c gpuctl -n $g -l chunk-size -x -d 'list objects N at a time (0: all at once)'
complete -c gpuctl -n $g -s o -l output -x -a '(__gpuctl_output_formats)' -d 'output format'
complete -c gpuctl -n $g -l config -r -F -d 'gpuctl config file'
complete -c gpuctl -n $g -l templates -x -a '(__fish_complete_directories (commandline -ct))' -d 'templates here replace the built-in ones'
complete -c gpuctl -n $g -s v -l verbose -d 'log each API request to stderr'
complete -c gpuctl -n $g -s h -l help -d 'show help'

# label and taint
set -l lt '__gpuctl_using label taint'
complete -c gpuctl -n $lt -s l -l selector -x -d 'act on the nodes matching this label selector'
complete -c gpuctl -n $lt -l all -d 'act on every node, GPU or not'
complete -c gpuctl -n $lt -l overwrite -d 'allow changing existing values'
complete -c gpuctl -n '__gpuctl_using label' -l taint -f -d 'also add this taint (default: gpuctl taint'"'"'s) in the same write as the labels'
complete -c gpuctl -n '__gpuctl_using taint' -l until-validated -d 'also taint gpuctl.io/unvalidated until gpuctl validate --admit finds the node good'
complete -c gpuctl -n $lt -l dry-run -f -a 'none client server' -d 'client: send nothing; server: validate, save nothing'

# deploy
set -l d '__gpuctl_using deploy'
complete -c gpuctl -n $d -s l -l selector -x -d 'the nodes matching this label selector'
complete -c gpuctl -n $d -l only -x -a 'nodes\t"prepare the nodes over SSH" runtimeclass\t"create the RuntimeClass nvidia" plugin\t"the NVIDIA device plugin" gfd\t"gpu-feature-discovery" dcgm-exporter\t"the DCGM exporter"' -d 'run only this phase (repeatable)'
complete -c gpuctl -n $d -l skip -x -a 'nodes\t"prepare the nodes over SSH" runtimeclass\t"create the RuntimeClass nvidia" plugin\t"the NVIDIA device plugin" gfd\t"gpu-feature-discovery" dcgm-exporter\t"the DCGM exporter"' -d 'skip this phase (repeatable)'
complete -c gpuctl -n $d -l inventory -r -F -d 'how to reach nodes (gpuctl-inventory(5))'
complete -c gpuctl -n $d -l ssh-user -x -d 'SSH user (default root; others use sudo -n)'
complete -c gpuctl -n $d -s i -l identity -r -F -d 'SSH private key'
complete -c gpuctl -n $d -l ssh-port -x -d 'SSH port (default 22)'
complete -c gpuctl -n $d -l ssh-timeout -x -d 'limit for each connection and command (default 30)'
complete -c gpuctl -n $d -l ssh-accept-new -d 'add unknown host keys to known_hosts (never changed ones)'
complete -c gpuctl -n $d -s J -l ssh-jump -x -d 'reach the nodes through this SSH server'
complete -c gpuctl -n $d -l known-hosts -r -F -d 'known_hosts file'
complete -c gpuctl -n $d -l parallel -x -d 'nodes worked on at once (default 32)'
complete -c gpuctl -n $d -l default-runtime -d "make nvidia containerd's default runtime"
complete -c gpuctl -n $d -l min-driver -x -d 'oldest acceptable NVIDIA driver (default 470)'
complete -c gpuctl -n $d -l from-inventory -d 'take the nodes from the inventory, not the cluster (with --only nodes)'
complete -c gpuctl -n $d -l restart-command -x -d 'how to restart containerd'
complete -c gpuctl -n $d -l check-command -x -d 'how to check containerd runs'
complete -c gpuctl -n $d -l with -x -a 'gfd dcgm-exporter gfd,dcgm-exporter' -d 'also deploy GFD and/or the DCGM exporter'
complete -c gpuctl -n $d -l plugin-version -x -a 'v0.19.3 v0.17.2' -d 'the device plugin version'
complete -c gpuctl -n $d -l registry -x -d 'pull every image from this registry (a mirror)'
complete -c gpuctl -n $d -l operator -d "configure the GPU Operator's device plugin, deploy none"
complete -c gpuctl -n $d -l timeout -x -d 'how long to wait for the DaemonSets (default 5m)'
complete -c gpuctl -n $d -l render -d "print the cluster phases' objects as YAML; contact nothing"
complete -c gpuctl -n $d -l diff -d 'show what would change in the cluster; change nothing'
complete -c gpuctl -n $d -l dry-run -f -a 'none client server' -d 'probe and show what would change; change nothing'

# validate
set -l v '__gpuctl_using validate'
complete -c gpuctl -n $v -s l -l selector -x -d 'the nodes matching this label selector'
complete -c gpuctl -n $v -l only -x -a 'cluster\t"through the API" nodes\t"over SSH on every node"' -d 'run only this group of checks (repeatable)'
complete -c gpuctl -n $v -l skip -x -a 'cluster\t"through the API" nodes\t"over SSH on every node"' -d 'skip this group of checks (repeatable)'
complete -c gpuctl -n $v -l junit -r -F -d 'also write the results as JUnit XML (- for stdout)'
complete -c gpuctl -n $v -l list -d 'list the checks and exit'
complete -c gpuctl -n $v -l strict -d 'warnings fail too'
complete -c gpuctl -n $v -l admit -d 'remove the taint gpuctl.io/unvalidated from every node whose checks passed'
complete -c gpuctl -n $v -l smoke -d 'also run gpuctl smoke-test on the nodes'
complete -c gpuctl -n $v -l smoke-image -r -d 'the smoke test pods image'
complete -c gpuctl -n $v -l smoke-timeout -r -d 'limit for the smoke test (default 5m)'
complete -c gpuctl -n $v -l inventory -r -F -d 'how to reach nodes (gpuctl-inventory(5))'
complete -c gpuctl -n $v -l ssh-user -x -d 'SSH user (default root; others use sudo -n)'
complete -c gpuctl -n $v -s i -l identity -r -F -d 'SSH private key'
complete -c gpuctl -n $v -l ssh-port -x -d 'SSH port (default 22)'
complete -c gpuctl -n $v -l ssh-timeout -x -d 'limit for each connection and command (default 30)'
complete -c gpuctl -n $v -l ssh-accept-new -d 'add unknown host keys to known_hosts (never changed ones)'
complete -c gpuctl -n $v -s J -l ssh-jump -x -d 'reach the nodes through this SSH server'
complete -c gpuctl -n $v -l known-hosts -r -F -d 'known_hosts file'
complete -c gpuctl -n $v -l parallel -x -d 'nodes checked at once (default 32)'
complete -c gpuctl -n $v -l min-driver -x -d 'oldest acceptable NVIDIA driver (default 470)'
complete -c gpuctl -n $v -l from-inventory -d 'take the nodes from the inventory, not the cluster (with --only nodes)'

# slice
set -l sl '__gpuctl_using slice'
complete -c gpuctl -n $sl -s l -l selector -x -d 'give the nodes matching this selector their own configuration'
complete -c gpuctl -n $sl -l replicas -x -d 'share each GPU N ways (2 or more)'
complete -c gpuctl -n $sl -l profile -x -a 'any\t"4 replicas" high-memory\t"2 replicas" high-density\t"8 replicas"' -d 'replicas from a profile'
complete -c gpuctl -n $sl -l rename -d 'advertise the shared GPUs as nvidia.com/gpu.shared'
complete -c gpuctl -n $sl -l fail-requests-greater-than-one -d 'refuse pods that ask for more than one shared GPU'
complete -c gpuctl -n $sl -l mig-strategy -x -a 'single mixed' -d 'how MIG devices are advertised'
complete -c gpuctl -n $sl -l mig-config -x -d "with the GPU Operator: the MIG manager's layout"
complete -c gpuctl -n $sl -l timeout -x -d 'how long to wait for the nodes (default 5m)'
complete -c gpuctl -n $sl -l no-wait -d 'change the configuration and return without waiting'
complete -c gpuctl -n $sl -l dry-run -f -a 'none client server' -d 'show what would change; change nothing'
complete -c gpuctl -n "$sl; and __gpuctl_wants_node" -a 'time-slicing\t"no memory or fault isolation" mps\t"memory limits, one fault domain" mig\t"hardware isolation" none\t"stop sharing"'

# smoke-test
set -l st '__gpuctl_using smoke-test'
complete -c gpuctl -n $st -s l -l selector -x -d 'the GPU nodes matching this label selector'
complete -c gpuctl -n $st -l image -x -d "the pods' image (default the pinned CUDA base image)"
complete -c gpuctl -n $st -l toleration -x -d 'the pods also tolerate this taint (KEY[=VALUE]:EFFECT, repeatable)'
complete -c gpuctl -n $st -l pods -x -d "pods sharing a node's GPUs at once (default: its free slots)"
complete -c gpuctl -n $st -l no-sharing -d 'skip the sharing checks'
complete -c gpuctl -n $st -l measure -d 'run a compute load in each pod at once and report the throughput'
complete -c gpuctl -n $st -l measure-seconds -x -d 'seconds of load per pod with --measure (default 10, at most 600)'
complete -c gpuctl -n $st -l keep -d 'leave the pods (prints the command that removes them)'
complete -c gpuctl -n $st -l timeout -x -d 'limit for the whole run (default 5m)'
complete -c gpuctl -n $st -l junit -r -F -d 'also write the results as JUnit XML (- for stdout)'

# cleanup
set -l c '__gpuctl_using cleanup'
complete -c gpuctl -n $c -s l -l selector -x -d 'the nodes matching this label selector'
complete -c gpuctl -n $c -l only -x -a 'cluster\t"the objects gpuctl created" labels\t"the labels and taints gpuctl added" nodes\t"containerd over SSH"' -d 'run only this group (repeatable)'
complete -c gpuctl -n $c -l skip -x -a 'cluster\t"the objects gpuctl created" labels\t"the labels and taints gpuctl added" nodes\t"containerd over SSH"' -d 'skip this group (repeatable)'
complete -c gpuctl -n $c -l force -x -a 'nodes' -d 'also delete this object gpuctl did not create (KIND/NAME), or nodes'
complete -c gpuctl -n $c -l inventory -r -F -d 'how to reach nodes (gpuctl-inventory(5))'
complete -c gpuctl -n $c -l ssh-user -x -d 'SSH user (default root; others use sudo -n)'
complete -c gpuctl -n $c -s i -l identity -r -F -d 'SSH private key'
complete -c gpuctl -n $c -l ssh-port -x -d 'SSH port (default 22)'
complete -c gpuctl -n $c -l ssh-timeout -x -d 'limit for each connection and command (default 30)'
complete -c gpuctl -n $c -l ssh-accept-new -d 'add unknown host keys to known_hosts (never changed ones)'
complete -c gpuctl -n $c -s J -l ssh-jump -x -d 'reach the nodes through this SSH server'
complete -c gpuctl -n $c -l known-hosts -r -F -d 'known_hosts file'
complete -c gpuctl -n $c -l parallel -x -d 'nodes worked on at once (default 32)'
complete -c gpuctl -n $c -l min-driver -x -d 'oldest acceptable NVIDIA driver (default 470)'
complete -c gpuctl -n $c -l from-inventory -d 'take the nodes from the inventory, not the cluster (with --only nodes)'
complete -c gpuctl -n $c -l restart-command -x -d 'how to restart containerd'
complete -c gpuctl -n $c -l check-command -x -d 'how to check containerd runs'
complete -c gpuctl -n $c -l timeout -x -d 'how long to wait for the objects to be gone (default 5m)'
complete -c gpuctl -n $c -l dry-run -f -a 'none client server' -d 'list what would be removed; change nothing'

# node names: label, taint, deploy, validate, slice, cleanup, smoke-test
complete -c gpuctl -n __gpuctl_wants_node -a '(__gpuctl_nodes)'
complete -c gpuctl -n '__gpuctl_using taint' -a '(__gpuctl_effects)'
