package org.fhirlab.hapi;

import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;

/**
 * Makes Batch2 jobs (bulk export) finish in seconds rather than minutes.
 *
 * <p>A bulk export is a "gated" Batch2 job: each step (find resource ids, fetch, write Binary
 * files, build the report) only starts when the job maintenance pass notices the previous one has
 * finished. HAPI runs that pass once a minute, so even a one-patient Group export takes about four
 * minutes. This launcher runs it every {@code fhirlab.hapi.batch2_maintenance_interval_millis}
 * (default 5000) instead. A pass is a handful of small queries on the Batch2 tables, so the shorter
 * interval costs next to nothing on an idle server. The official image does not know this key; the
 * compose lab's HAPI image compiles this class into the official one (docker-compose.yml).
 */
@Configuration
public class BatchJobConfig {

	static final String INTERVAL_KEY = "fhirlab.hapi.batch2_maintenance_interval_millis";
	static final long DEFAULT_INTERVAL_MILLIS = 5_000L;

	private static final Logger ourLog = LoggerFactory.getLogger(BatchJobConfig.class);

	/**
	 * The interval must be set before the maintenance service registers its scheduled job, i.e.
	 * before the bean is initialised, hence a post-processor ({@code static}: post-processors are
	 * created before ordinary beans).
	 */
	@Bean
	public static BeanPostProcessor batch2MaintenanceInterval(Environment theEnvironment) {
		long interval = theEnvironment.getProperty(INTERVAL_KEY, Long.class, DEFAULT_INTERVAL_MILLIS);
		if (interval < 1_000L) {
			throw new IllegalStateException(INTERVAL_KEY + "=" + interval + " is too small; use 1000 or more");
		}
		return new BeanPostProcessor() {
			@Override
			public Object postProcessBeforeInitialization(Object theBean, String theBeanName) {
				if (theBean instanceof JobMaintenanceServiceImpl maintenance) {
					maintenance.setScheduledJobFrequencyMillis(interval);
					ourLog.info("Batch2 job maintenance pass every {} ms", interval);
				}
				return theBean;
			}
		};
	}
}
