import { RateLimitWindows1764200000000 } from './1764200000000-RateLimitWindows';
import { Models1764200100000 } from './1764200100000-Models';
import { EventsAndDetections1764200200000 } from './1764200200000-EventsAndDetections';
import { RetrainState1764200300000 } from './1764200300000-RetrainState';
import { AlertsAndSilences1764200400000 } from './1764200400000-AlertsAndSilences';
import { Series1764200500000 } from './1764200500000-Series';
import { ReplayJobs1764200600000 } from './1764200600000-ReplayJobs';
import { EventTimeIncidents1764300000000 } from './1764300000000-EventTimeIncidents';
import { JobTicks1764300400000 } from './1764300400000-JobTicks';
import { AlertSlackDelivery1764300410000 } from './1764300410000-AlertSlackDelivery';
import { PartitionByDay1764300600000 } from './1764300600000-PartitionByDay';
import { EventsKeyByTime1764400000000 } from './1764400000000-EventsKeyByTime';
import { SeriesServiceMarks1764500000000 } from './1764500000000-SeriesServiceMarks';

/** Every migration, in order. Listed explicitly so the same list works compiled and under ts-jest. */
export const ALL_MIGRATIONS = [RateLimitWindows1764200000000, Models1764200100000, EventsAndDetections1764200200000, RetrainState1764200300000, AlertsAndSilences1764200400000, Series1764200500000, ReplayJobs1764200600000, EventTimeIncidents1764300000000, JobTicks1764300400000, AlertSlackDelivery1764300410000, PartitionByDay1764300600000, EventsKeyByTime1764400000000, SeriesServiceMarks1764500000000];
