/**
 * @prompto/core: prompt records, experiment files, queue planning and pacing, the scheduler,
 * data folders and output. Knows no SDK: providers come in as Layers.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Cache from "./Cache.js"
/** @since 0.1.0 */
export * as Choices from "./Choices.js"
/** @since 0.1.0 */
export * as Cost from "./Cost.js"
/** @since 0.1.0 */
export * as DataFolder from "./DataFolder.js"
/** @since 0.1.0 */
export * as Estimate from "./Estimate.js"
/** @since 0.1.0 */
export * as Evaluation from "./Evaluation.js"
/** @since 0.1.0 */
export * as Expand from "./Expand.js"
/** @since 0.1.0 */
export * as Experiment from "./Experiment.js"
/** @since 0.1.0 */
export * as ExperimentCheck from "./ExperimentCheck.js"
/** @since 0.1.0 */
export * as ExperimentFile from "./ExperimentFile.js"
/** @since 0.1.0 */
export * as Extract from "./Extract.js"
/** @since 0.1.0 */
export * as GracefulStop from "./GracefulStop.js"
/** @since 0.1.0 */
export * as Judge from "./Judge.js"
/** @since 0.1.0 */
export * as LinkedRun from "./LinkedRun.js"
/** @since 0.1.0 */
export * as Metrics from "./Metrics.js"
/** @since 0.1.0 */
export * as Missing from "./Missing.js"
/** @since 0.1.0 */
export * as Output from "./Output.js"
/** @since 0.1.0 */
export * as Pipeline from "./Pipeline.js"
/** @since 0.1.0 */
export * as PromptRecord from "./PromptRecord.js"
/** @since 0.1.0 */
export * as Provider from "./Provider.js"
/** @since 0.1.0 */
export * as ProviderError from "./ProviderError.js"
/** @since 0.1.0 */
export * as QueuePlan from "./QueuePlan.js"
/** @since 0.1.0 */
export * as Rephrase from "./Rephrase.js"
export * as Report from "./Report.js"
/** @since 0.1.0 */
export * as RequestPath from "./RequestPath.js"
/** @since 0.1.0 */
export * as Resume from "./Resume.js"
/** @since 0.1.0 */
export * as RetryPolicy from "./RetryPolicy.js"
/** @since 0.1.0 */
export * as RunEvents from "./RunEvents.js"
/** @since 0.1.0 */
export * as RunPlan from "./RunPlan.js"
/** @since 0.1.0 */
export * as RunSummary from "./RunSummary.js"
/** @since 0.1.0 */
export * as Scorer from "./Scorer.js"
/** @since 0.1.0 */
export * as Scheduler from "./Scheduler.js"
/** @since 0.1.0 */
export * as SpendCap from "./SpendCap.js"
/** @since 0.1.0 */
export * as Strategy from "./Strategy.js"
/** @since 0.1.0 */
export * as StrategySpec from "./StrategySpec.js"
/** @since 0.1.0 */
export * as Template from "./Template.js"
/** @since 0.1.0 */
export * as Timestamp from "./Timestamp.js"
/** @since 0.1.0 */
export * as TokenBudget from "./TokenBudget.js"
/** @since 0.1.0 */
export * as TokenCount from "./TokenCount.js"
