; The achalasia rules of data/presentations/achalasia/rules.yaml (19 rules and 5 named definitions),
; translated by hand into CLIPS for the side-by-side benchmark (benchmarks/decision.py). Not product
; code: the product reads the YAML. tests/test_decision_translations.py checks that this file fires
; the product's rules on every achalasia teaching case and on generated findings, so it cannot drift.
; A finding that was not recorded is the symbol nil; yes/no are TRUE/FALSE; ids are symbols.
; As in durable-rules, a comparison on an absent finding is false, and "is_not" (~TRUE) also
; matches an absent finding. A named definition that holds is the fact (holds <id>); one that does
; not is its absence, as the product stores every definition as true or false. Definitions fire
; first (salience), the later ones after the earlier they use. Each rule asserts (fired <rule id>),
; (flag <id>) per flag it raises and (option <id> <strength>) per option effect; CLIPS keeps one copy
; of a repeated fact. An option named by several rules keeps one strength, as rules/planner.py merges
; them (models/knowledge.py MERGE_PRIORITY: not_indicated, later, preferred, equivalent, alternative).

(deftemplate findings
  (slot diagnosis_confirmed (default nil))
  (slot malignancy_excluded (default nil))
  (slot subtype (default nil))
  (slot operative_risk (default nil))
  (slot sigmoid_esophagus (default nil))
  (slot rapid_weight_loss (default nil))
  (slot difficult_gej_passage (default nil))
  (slot opioid_use (default nil))
  (slot age_years (default nil))
  (slot symptom_duration_months (default nil))
  (slot reflux_or_hiatal_hernia (default nil))
  (slot prior_pneumatic_dilation (default nil))
  (slot prior_botulinum_toxin_injection (default nil))
  (slot prior_heller_myotomy_fundoplication (default nil))
  (slot prior_poem (default nil)))

(deffunction merge-rank (?strength)
  (switch ?strength
    (case not_indicated then 0)
    (case later then 1)
    (case preferred then 2)
    (case equivalent then 3)
    (default 4)))

; ---------------------------------------------------------------- named definitions

(defrule previous_myotomy_failed
  (declare (salience 30))
  (findings (prior_heller_myotomy_fundoplication ?heller) (prior_poem ?poem))
  (test (or (eq ?heller failed) (eq ?heller partial_response) (eq ?poem failed) (eq ?poem partial_response)))
  =>
  (assert (holds previous_myotomy_failed)))

(defrule classic_achalasia_for_first_definitive_therapy
  (declare (salience 20))
  (findings (diagnosis_confirmed TRUE) (subtype type_i|type_ii) (sigmoid_esophagus ~TRUE))
  (not (holds previous_myotomy_failed))
  =>
  (assert (holds classic_achalasia_for_first_definitive_therapy)))

(defrule spastic_achalasia_for_first_definitive_therapy
  (declare (salience 20))
  (findings (diagnosis_confirmed TRUE) (subtype type_iii) (sigmoid_esophagus ~TRUE))
  (not (holds previous_myotomy_failed))
  =>
  (assert (holds spastic_achalasia_for_first_definitive_therapy)))

(defrule younger_than_40
  (declare (salience 20))
  (findings (age_years ?age&:(numberp ?age)&:(< ?age 40)))
  =>
  (assert (holds younger_than_40)))

(defrule pre_existing_reflux
  (declare (salience 20))
  (findings (reflux_or_hiatal_hernia TRUE))
  =>
  (assert (holds pre_existing_reflux)))

; ---------------------------------------------------------------- rules

(defrule achalasia_diagnosis_not_confirmed_needs_manometry
  (findings (diagnosis_confirmed ~TRUE))
  =>
  (assert (fired achalasia_diagnosis_not_confirmed_needs_manometry))
  (assert (flag diagnosis_not_confirmed)))

(defrule achalasia_malignancy_not_excluded_needs_endoscopy
  (findings (malignancy_excluded ~TRUE))
  =>
  (assert (fired achalasia_malignancy_not_excluded_needs_endoscopy))
  (assert (flag malignancy_not_excluded)))

(defrule achalasia_features_of_pseudoachalasia
  (findings (age_years ?age) (symptom_duration_months ?months) (rapid_weight_loss ?loss) (difficult_gej_passage ?gej))
  (test (or (and (numberp ?age) (>= ?age 60)) (and (numberp ?months) (< ?months 12)) (eq ?loss TRUE) (eq ?gej TRUE)))
  =>
  (assert (fired achalasia_features_of_pseudoachalasia))
  (assert (flag possible_pseudoachalasia)))

(defrule achalasia_opioid_use_repeat_manometry_off_opioids
  (findings (opioid_use TRUE))
  =>
  (assert (fired achalasia_opioid_use_repeat_manometry_off_opioids))
  (assert (option opioid_withdrawal preferred))
  (assert (flag opioid_effect_not_excluded)))

(defrule achalasia_subtype_unknown_needs_classification
  (findings (diagnosis_confirmed TRUE) (subtype nil) (sigmoid_esophagus ~TRUE))
  =>
  (assert (fired achalasia_subtype_unknown_needs_classification)))

(defrule achalasia_type_iii_prefers_poem
  (holds spastic_achalasia_for_first_definitive_therapy)
  =>
  (assert (fired achalasia_type_iii_prefers_poem))
  (assert (option poem preferred))
  (assert (option heller_myotomy_fundoplication alternative)))

(defrule achalasia_type_iii_with_reflux_counsel
  (holds spastic_achalasia_for_first_definitive_therapy)
  (holds pre_existing_reflux)
  =>
  (assert (fired achalasia_type_iii_with_reflux_counsel))
  (assert (option poem preferred)))

(defrule achalasia_type_i_ii_heller_myotomy_comparable
  (holds classic_achalasia_for_first_definitive_therapy)
  =>
  (assert (fired achalasia_type_i_ii_heller_myotomy_comparable))
  (assert (option heller_myotomy_fundoplication equivalent)))

(defrule achalasia_type_i_ii_poem_comparable
  (holds classic_achalasia_for_first_definitive_therapy)
  (not (holds pre_existing_reflux))
  =>
  (assert (fired achalasia_type_i_ii_poem_comparable))
  (assert (option poem equivalent)))

(defrule achalasia_type_i_ii_reflux_favours_heller_with_fundoplication
  (holds classic_achalasia_for_first_definitive_therapy)
  (holds pre_existing_reflux)
  =>
  (assert (fired achalasia_type_i_ii_reflux_favours_heller_with_fundoplication))
  (assert (option poem alternative))
  (assert (option heller_myotomy_fundoplication equivalent)))

(defrule achalasia_type_i_ii_dilation_comparable
  (holds classic_achalasia_for_first_definitive_therapy)
  (not (holds younger_than_40))
  (findings (prior_pneumatic_dilation ~failed))
  =>
  (assert (fired achalasia_type_i_ii_dilation_comparable))
  (assert (option pneumatic_dilation equivalent)))

(defrule achalasia_younger_patient_dilation_less_durable
  (holds classic_achalasia_for_first_definitive_therapy)
  (holds younger_than_40)
  =>
  (assert (fired achalasia_younger_patient_dilation_less_durable))
  (assert (option pneumatic_dilation alternative)))

(defrule achalasia_failed_dilation_or_toxin_myotomy
  (findings (diagnosis_confirmed TRUE) (subtype ~type_iii)
            (prior_pneumatic_dilation ?dilation) (prior_botulinum_toxin_injection ?toxin))
  (test (or (eq ?dilation failed) (eq ?dilation partial_response)
            (eq ?toxin failed) (eq ?toxin partial_response)))
  =>
  (assert (fired achalasia_failed_dilation_or_toxin_myotomy))
  (assert (option heller_myotomy_fundoplication equivalent))
  (assert (option poem equivalent)))

(defrule achalasia_failed_heller_poem_or_dilation
  (findings (diagnosis_confirmed TRUE) (prior_heller_myotomy_fundoplication failed|partial_response))
  =>
  (assert (fired achalasia_failed_heller_poem_or_dilation))
  (assert (option poem preferred))
  (assert (option pneumatic_dilation alternative)))

(defrule achalasia_failed_poem_redo_myotomy
  (findings (diagnosis_confirmed TRUE) (prior_poem failed|partial_response))
  =>
  (assert (fired achalasia_failed_poem_redo_myotomy))
  (assert (option poem equivalent))
  (assert (option heller_myotomy_fundoplication equivalent))
  (assert (option pneumatic_dilation alternative)))

(defrule achalasia_unfit_botulinum_toxin_first
  (findings (operative_risk high))
  =>
  (assert (fired achalasia_unfit_botulinum_toxin_first))
  (assert (option botulinum_toxin_injection preferred))
  (assert (option pneumatic_dilation not_indicated))
  (assert (flag high_operative_risk)))

(defrule achalasia_sigmoid_end_stage_specialist_decision
  (findings (diagnosis_confirmed TRUE) (sigmoid_esophagus TRUE))
  =>
  (assert (fired achalasia_sigmoid_end_stage_specialist_decision))
  (assert (option heller_myotomy_fundoplication equivalent))
  (assert (option esophagectomy later))
  (assert (flag specialist_mdt_decision)))

(defrule achalasia_sigmoid_poem_option
  (findings (diagnosis_confirmed TRUE) (sigmoid_esophagus TRUE))
  =>
  (assert (fired achalasia_sigmoid_poem_option))
  (assert (option poem equivalent)))

(defrule achalasia_child_adult_guideline_specialist_review
  (findings (age_years ?age&:(numberp ?age)&:(< ?age 18)))
  =>
  (assert (fired achalasia_child_adult_guideline_specialist_review))
  (assert (flag adult_guideline_in_child)))

; Several rules name one option: the strength that wins the merge stays, the others go.
(defrule merge-option-strengths
  ?weaker <- (option ?option ?strength)
  (option ?option ?other&:(< (merge-rank ?other) (merge-rank ?strength)))
  =>
  (retract ?weaker))

; One call per decision: findings in (in the template's slot order), option ids and strengths out
; (option, strength, option, strength, ...). Doing the reset, assert, run and collection inside
; CLIPS keeps Python fact handles out of the loop (each retained handle slows every later call of
; this CLIPS version, measured).
(deffunction decide (?dc ?me ?st ?or ?se ?wl ?gej ?op ?age ?months ?reflux ?pd ?bt ?hm ?pp)
  (reset)
  (assert (findings (diagnosis_confirmed ?dc) (malignancy_excluded ?me) (subtype ?st)
                    (operative_risk ?or) (sigmoid_esophagus ?se) (rapid_weight_loss ?wl)
                    (difficult_gej_passage ?gej) (opioid_use ?op) (age_years ?age)
                    (symptom_duration_months ?months) (reflux_or_hiatal_hernia ?reflux)
                    (prior_pneumatic_dilation ?pd) (prior_botulinum_toxin_injection ?bt)
                    (prior_heller_myotomy_fundoplication ?hm) (prior_poem ?pp)))
  (run)
  (bind ?out (create$))
  (do-for-all-facts ((?o option)) TRUE (bind ?out (create$ ?out ?o:implied)))
  ?out)

; The rules the last decision fired, the flags it raised and the definitions that held (for the
; agreement check, not timed).
(deffunction fired-rules ()
  (bind ?out (create$))
  (do-for-all-facts ((?f fired)) TRUE (bind ?out (create$ ?out ?f:implied)))
  ?out)

(deffunction raised-flags ()
  (bind ?out (create$))
  (do-for-all-facts ((?f flag)) TRUE (bind ?out (create$ ?out ?f:implied)))
  ?out)

(deffunction held-definitions ()
  (bind ?out (create$))
  (do-for-all-facts ((?f holds)) TRUE (bind ?out (create$ ?out ?f:implied)))
  ?out)
