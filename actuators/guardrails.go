package actuators

// Guardrail names, the closed set of values of Action.Guardrail and of the
// guardrail label of augur_actuator_refusals_total.
const (
	GuardMalformed         = "malformed"
	GuardSignature         = "signature"
	GuardExpired           = "expired"
	GuardDuplicate         = "duplicate"
	GuardKillSwitch        = "kill_switch"
	GuardModeOff           = "mode_off"
	GuardUnknownKind       = "unknown_kind"
	GuardNoExecutor        = "no_executor"
	GuardInvalid           = "invalid_decision"
	GuardNamespaceDenied   = "namespace_denied"
	GuardNamespaceNotAllow = "namespace_not_allowed"
	GuardStatefulSet       = "statefulset_not_opted_in"
	GuardMinReplicas       = "min_replicas"
	GuardMaxReplicas       = "max_replicas"
	GuardMaxStep           = "max_step"
	GuardCooldownUp        = "cooldown_up"
	GuardCooldownDown      = "cooldown_down"
	GuardStabilization     = "scale_down_stabilization"
	GuardRateLimit         = "rate_limit"
	GuardBlastRadius       = "blast_radius"
	GuardUntaintHoldDown   = "untaint_hold_down"
	GuardZonalOneAtATime   = "zonal_one_at_a_time"
	GuardZonalHealthyZones = "zonal_min_healthy_zones"
	GuardZonalExpiry       = "zonal_expiry"
	GuardZonalForeignShift = "zonal_foreign_shift"
	GuardApproval          = "approval"
	GuardForbidden         = "forbidden"
)

// Guardrails lists every guardrail name, for bounded metric labels.
var Guardrails = []string{GuardMalformed, GuardSignature, GuardExpired, GuardDuplicate,
	GuardKillSwitch, GuardModeOff, GuardUnknownKind, GuardNoExecutor, GuardInvalid,
	GuardNamespaceDenied, GuardNamespaceNotAllow, GuardStatefulSet, GuardMinReplicas,
	GuardMaxReplicas, GuardMaxStep, GuardCooldownUp, GuardCooldownDown, GuardStabilization,
	GuardRateLimit, GuardBlastRadius, GuardUntaintHoldDown, GuardZonalOneAtATime,
	GuardZonalHealthyZones, GuardZonalExpiry, GuardZonalForeignShift, GuardApproval, GuardForbidden}
